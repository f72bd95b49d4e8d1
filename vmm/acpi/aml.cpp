#include "vmm/acpi/aml.h"

#include <initializer_list>

#include "vmm/table_writer.h"

// Section numbers are those of the ACPI 6.4 specification.

namespace kairos::vmm::aml {
namespace {

// AML opcodes (20.2).
constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0a;
constexpr uint8_t kWordPrefix = 0x0b;
constexpr uint8_t kDWordPrefix = 0x0c;
constexpr uint8_t kStringPrefix = 0x0d;
constexpr uint8_t kQWordPrefix = 0x0e;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kPackageOp = 0x12;
constexpr uint8_t kMethodOp = 0x14;
constexpr uint8_t kNotifyOp = 0x86;
constexpr uint8_t kMaxMethodArgs = 7;  // MethodFlags bits 0-2 (20.2.5.2)
constexpr uint8_t kExtOpPrefix = 0x5b;
constexpr uint8_t kDeviceOp = 0x82;  // after kExtOpPrefix
constexpr uint8_t kRootChar = '\\';
constexpr size_t kNameSegmentSize = 4;

// PkgLength (20.2.4): a one-byte encoding holds up to 63; the lead byte of
// a longer one keeps 4 bits of the length.
constexpr size_t kOneBytePackageLength = 0x3f;
constexpr size_t kMaxFollowingBytes = 3;

// Small resource descriptors (6.4.2): tag byte = type << 3 | length.
constexpr uint8_t kIrqDescriptor = 0x22;     // IRQ, 2 bytes: no information byte
constexpr uint8_t kIoDescriptor = 0x47;      // I/O port, 7 bytes
constexpr uint8_t kIoDecode16 = 0x01;        // the device decodes 16 address bits
constexpr uint8_t kEndTagDescriptor = 0x79;  // end tag, 1 byte: the checksum
// Large resource descriptors (6.4.3): a tag byte, then a 16-bit length of
// what follows.
constexpr uint8_t kMemory32FixedDescriptor = 0x86;  // 6.4.3.4
constexpr uint16_t kMemory32FixedLength = 9;
constexpr uint8_t kMemoryReadWrite = 0x01;
constexpr uint8_t kExtendedInterruptDescriptor = 0x89;  // 6.4.3.6
// Flags, then the table's length (one), then one DWord interrupt number.
constexpr uint16_t kOneExtendedInterruptLength = 6;
constexpr uint8_t kInterruptConsumer = 1u << 0;
constexpr uint8_t kInterruptEdge = 1u << 1;  // bits 2 (active low) and 3 (shared) stay clear

// Every encoder reserves its output's final size before appending. Growing
// a one-byte vector through insert() makes GCC 12 at -O3 (the Release
// build) report an out-of-bounds memcpy in the inlined reallocation
// (-Warray-bounds, a false positive); without a reallocation it has nothing
// to misread, and the encoders allocate once.
void append(Bytes &out, const Bytes &more)
{
	out.insert(out.end(), more.begin(), more.end());
}

size_t total_size(const std::vector<Bytes> &parts)
{
	size_t size = 0;
	for (const auto &part : parts)
		size += part.size();
	return size;
}

// opcode bytes, the PkgLength of body, then body.
Bytes with_package_length(std::initializer_list<uint8_t> opcode, const Bytes &body)
{
	Bytes length = package_length(body.size());
	Bytes out;
	out.reserve(opcode.size() + length.size() + body.size());
	out.insert(out.end(), opcode.begin(), opcode.end());
	append(out, length);
	append(out, body);
	return out;
}

// A one-byte opcode and its two operands, without a PkgLength (Name, Notify).
Bytes opcode_and_operands(uint8_t opcode, const Bytes &first, const Bytes &second)
{
	Bytes out;
	out.reserve(1 + first.size() + second.size());
	out.push_back(opcode);
	append(out, first);
	append(out, second);
	return out;
}

// A named object's body: its NameString, then its terms.
Bytes name_and_terms(const Bytes &name, const std::vector<Bytes> &terms)
{
	Bytes body;
	body.reserve(name.size() + total_size(terms));
	append(body, name);
	for (const auto &term : terms)
		append(body, term);
	return body;
}

}  // namespace

Bytes package_length(size_t content_size)
{
	if (content_size + 1 <= kOneBytePackageLength)
		return {static_cast<uint8_t>(content_size + 1)};
	for (size_t extra = 1; extra <= kMaxFollowingBytes; ++extra) {
		// The total counts the lead byte and the following bytes too.
		size_t total = content_size + 1 + extra;
		if (total >> (4 + 8 * extra))
			continue;
		Bytes encoded;
		encoded.reserve(1 + extra);
		encoded.push_back(static_cast<uint8_t>((extra << 6) | (total & 0xf)));
		for (size_t i = 0; i < extra; ++i)
			encoded.push_back(static_cast<uint8_t>(total >> (4 + 8 * i)));
		return encoded;
	}
	return {};
}

bool valid_name_segment(std::string_view name)
{
	if (name.empty() || name.size() > kNameSegmentSize)
		return false;
	for (size_t i = 0; i < name.size(); ++i) {
		char c = name[i];
		bool lead = (c >= 'A' && c <= 'Z') || c == '_';
		bool digit = c >= '0' && c <= '9';
		if (!lead && !(digit && i > 0))
			return false;
	}
	return true;
}

Bytes name_segment(std::string_view name)
{
	Bytes segment(name.begin(), name.end());
	segment.resize(kNameSegmentSize, '_');
	return segment;
}

Bytes root_name(std::string_view name)
{
	Bytes path;
	path.reserve(1 + kNameSegmentSize);
	path.push_back(kRootChar);
	append(path, name_segment(name));
	return path;
}

Bytes integer(uint64_t value)
{
	if (value == 0)
		return {kZeroOp};
	if (value == 1)
		return {kOneOp};
	TableWriter w;
	if (value <= 0xff) {
		w.u8(kBytePrefix);
		w.u8(static_cast<uint8_t>(value));
	} else if (value <= 0xffff) {
		w.u8(kWordPrefix);
		w.u16(static_cast<uint16_t>(value));
	} else if (value <= 0xffffffff) {
		w.u8(kDWordPrefix);
		w.u32(static_cast<uint32_t>(value));
	} else {
		w.u8(kQWordPrefix);
		w.u64(value);
	}
	return w.bytes;
}

Bytes string(std::string_view text)
{
	Bytes out;
	out.reserve(text.size() + 2);
	out.push_back(kStringPrefix);
	out.insert(out.end(), text.begin(), text.end());
	out.push_back(0);  // NullChar
	return out;
}

Bytes eisa_id(std::string_view id)
{
	auto letter = [](char c) { return static_cast<uint32_t>(c - 'A' + 1) & 0x1f; };
	auto hex = [](char c) { return static_cast<uint32_t>(c <= '9' ? c - '0' : c - 'A' + 10); };
	uint32_t vendor = (letter(id[0]) << 10) | (letter(id[1]) << 5) | letter(id[2]);
	uint32_t product = (hex(id[3]) << 12) | (hex(id[4]) << 8) | (hex(id[5]) << 4) | hex(id[6]);
	// Both halves most significant byte first, unlike a DWordConst's value.
	TableWriter w;
	w.u8(kDWordPrefix);
	w.u8(static_cast<uint8_t>(vendor >> 8));
	w.u8(static_cast<uint8_t>(vendor));
	w.u8(static_cast<uint8_t>(product >> 8));
	w.u8(static_cast<uint8_t>(product));
	return w.bytes;
}

Bytes name(const Bytes &name, const Bytes &object)
{
	return opcode_and_operands(kNameOp, name, object);
}

Bytes scope(const Bytes &name, const std::vector<Bytes> &terms)
{
	return with_package_length({kScopeOp}, name_and_terms(name, terms));
}

Bytes device(const Bytes &name, const std::vector<Bytes> &terms)
{
	return with_package_length({kExtOpPrefix, kDeviceOp}, name_and_terms(name, terms));
}

Bytes method(const Bytes &name, uint8_t arg_count, const std::vector<Bytes> &terms)
{
	// MethodFlags: ArgCount in bits 0-2, SerializeFlag (bit 3) and
	// SyncLevel (bits 4-7) clear.
	Bytes name_and_flags;
	name_and_flags.reserve(name.size() + 1);
	append(name_and_flags, name);
	name_and_flags.push_back(static_cast<uint8_t>(arg_count & kMaxMethodArgs));
	return with_package_length({kMethodOp}, name_and_terms(name_and_flags, terms));
}

Bytes notify(const Bytes &object, const Bytes &value)
{
	return opcode_and_operands(kNotifyOp, object, value);
}

Bytes package(const std::vector<Bytes> &elements)
{
	Bytes body;
	body.reserve(1 + total_size(elements));
	body.push_back(static_cast<uint8_t>(elements.size()));  // NumElements
	for (const auto &element : elements)
		append(body, element);
	return with_package_length({kPackageOp}, body);
}

Bytes buffer(const Bytes &data)
{
	Bytes size = integer(data.size());  // BufferSize
	Bytes body;
	body.reserve(size.size() + data.size());
	append(body, size);
	append(body, data);
	return with_package_length({kBufferOp}, body);
}

Bytes io_port(uint16_t minimum, uint16_t maximum, uint8_t alignment, uint8_t length)
{
	TableWriter w;
	w.u8(kIoDescriptor);
	w.u8(kIoDecode16);
	w.u16(minimum);
	w.u16(maximum);
	w.u8(alignment);
	w.u8(length);
	return w.bytes;
}

Bytes irq_no_flags(uint8_t irq)
{
	TableWriter w;
	w.u8(kIrqDescriptor);
	// A mask of ISA IRQs; one bit names one IRQ, none beyond 15.
	w.u16(irq < kIrqDescriptorIrqs ? static_cast<uint16_t>(1u << irq) : 0);
	return w.bytes;
}

Bytes memory32_fixed(uint32_t base, uint32_t length)
{
	TableWriter w;
	w.u8(kMemory32FixedDescriptor);
	w.u16(kMemory32FixedLength);
	w.u8(kMemoryReadWrite);
	w.u32(base);
	w.u32(length);
	return w.bytes;
}

Bytes extended_interrupt_edge(uint32_t gsi)
{
	TableWriter w;
	w.u8(kExtendedInterruptDescriptor);
	w.u16(kOneExtendedInterruptLength);
	w.u8(kInterruptConsumer | kInterruptEdge);
	w.u8(1);
	w.u32(gsi);
	return w.bytes;
}

Bytes resource_template(const std::vector<Bytes> &descriptors)
{
	Bytes data;
	data.reserve(total_size(descriptors) + 2);
	for (const auto &descriptor : descriptors)
		append(data, descriptor);
	data.push_back(kEndTagDescriptor);
	data.push_back(0);  // checksum
	return buffer(data);
}

}  // namespace kairos::vmm::aml
