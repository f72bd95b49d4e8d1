// An encoder for the ACPI Machine Language (AML) a DSDT holds: the few
// terms and resource descriptors a small machine needs, each a function
// that returns its encoding (after Firecracker's acpi-tables crate,
// aml.rs). It knows the ACPI specification, not any machine: which devices
// and values go into a table is vmm/acpi.cpp's business.
//
// Section numbers are those of the ACPI 6.4 specification. Terms nest by
// value: aml::scope(aml::root_name("_SB"), {aml::device(...), ...}).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace kairos::vmm::aml {

using Bytes = std::vector<uint8_t>;

// The largest length a PkgLength can encode (20.2.4): 28 bits.
inline constexpr size_t kMaxPackageLength = (size_t{1} << 28) - 1;

// PkgLength (20.2.4) for content_size bytes that follow it. The encoded
// value counts the encoding itself: one byte up to 63, else a lead byte
// with the low nibble and the count of 1-3 following bytes. Empty when the
// total exceeds kMaxPackageLength.
Bytes package_length(size_t content_size);

// NameSeg (20.2.2): 1-4 of A-Z, 0-9 and _, not starting with a digit.
bool valid_name_segment(std::string_view name);
// NameSeg (20.2.2): padded with '_' to four characters ("RTC" is "RTC_").
// The caller checks the name with valid_name_segment().
Bytes name_segment(std::string_view name);
// NameString (20.2.2) RootChar NameSeg: "\_S5_".
Bytes root_name(std::string_view name);

// An integer in its shortest encoding (20.2.3 ComputationalData): ZeroOp,
// OneOp, or a Byte, Word, DWord or QWord constant.
Bytes integer(uint64_t value);
// String (20.2.3): StringPrefix, the ASCII characters, NullChar.
Bytes string(std::string_view text);
// An EISA id such as "PNP0501" compressed into a DWordConst, as ASL's
// EisaId() does for a _HID (6.1.5): three 5-bit letters, then four hex
// digits. The caller checks the form.
Bytes eisa_id(std::string_view id);

// Name (name, object) (20.2.5.1 DefName).
Bytes name(const Bytes &name, const Bytes &object);
// Scope (name) { terms } (20.2.5.1 DefScope).
Bytes scope(const Bytes &name, const std::vector<Bytes> &terms);
// Device (name) { terms } (20.2.5.2 DefDevice).
Bytes device(const Bytes &name, const std::vector<Bytes> &terms);
// Method (name, arg_count) { terms } (20.2.5.2 DefMethod), not
// serialized, sync level 0; arg_count is 0 to 7.
Bytes method(const Bytes &name, uint8_t arg_count, const std::vector<Bytes> &terms);
// Notify (object, value) (20.2.5.3 DefNotify): object is a NameString
// (a single segment is found by the search rules of 5.3, upwards from the
// scope the term runs in), value an integer().
Bytes notify(const Bytes &object, const Bytes &value);
// Package () { elements } (20.2.5.4 DefPackage): at most 255 elements.
Bytes package(const std::vector<Bytes> &elements);
// Buffer () { data } (20.2.5.4 DefBuffer).
Bytes buffer(const Bytes &data);

// Resource descriptors (6.4), the contents of a ResourceTemplate.
//
// I/O Port Descriptor (6.4.2.5), 16-bit decode: IO (Decode16, minimum,
// maximum, alignment, length).
Bytes io_port(uint16_t minimum, uint16_t maximum, uint8_t alignment, uint8_t length);
// IRQ Descriptor (6.4.2.1) without the information byte, which means edge
// triggered, active high, not shared: IRQNoFlags () {irq}. Its 16-bit mask
// names ISA IRQs 0 to kIrqDescriptorIrqs - 1 only: a larger irq gives an
// empty mask (no IRQ).
inline constexpr uint8_t kIrqDescriptorIrqs = 16;
Bytes irq_no_flags(uint8_t irq);
// Fixed Location Memory Range Descriptor (6.4.3.4), read-write:
// Memory32Fixed (ReadWrite, base, length).
Bytes memory32_fixed(uint32_t base, uint32_t length);
// Extended Interrupt Descriptor (6.4.3.6) of one interrupt, a GSI on an
// APIC machine: Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive)
// {gsi}. Unlike the IRQ descriptor it reaches GSIs above 15.
Bytes extended_interrupt_edge(uint32_t gsi);
// ResourceTemplate () { descriptors } (6.4.1): a Buffer holding the
// descriptors and an End Tag (6.4.2.9) whose checksum is 0, which means
// "treated as if the checksum operation succeeded".
Bytes resource_template(const std::vector<Bytes> &descriptors);

}  // namespace kairos::vmm::aml
