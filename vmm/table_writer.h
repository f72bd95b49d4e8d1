// TableWriter: little-endian byte tables for the guest's firmware tables
// (ACPI, the MP table), and their 8-bit checksums.
#pragma once

#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string_view>
#include <vector>

namespace kairos::vmm {

class TableWriter {
public:
	void u8(uint8_t value) { bytes.push_back(value); }
	void u16(uint16_t value) { little_endian(value, 2); }
	void u32(uint32_t value) { little_endian(value, 4); }
	void u64(uint64_t value) { little_endian(value, 8); }
	void zeros(size_t count) { bytes.insert(bytes.end(), count, 0); }
	void append(const std::vector<uint8_t> &more) { bytes.insert(bytes.end(), more.begin(), more.end()); }
	// Fixed-width text fields, padded with spaces (ACPI ids, MP OEM ids).
	void text(std::string_view value, size_t width)
	{
		for (size_t i = 0; i < width; ++i)
			bytes.push_back(i < value.size() ? static_cast<uint8_t>(value[i]) : ' ');
	}

	std::vector<uint8_t> bytes;

private:
	void little_endian(uint64_t value, size_t size)
	{
		for (size_t i = 0; i < size; ++i)
			bytes.push_back(static_cast<uint8_t>(value >> (8 * i)));
	}
};

// Overwrites a little-endian field of an already written table.
inline void put_u16(std::vector<uint8_t> &bytes, size_t at, uint16_t value)
{
	bytes[at] = static_cast<uint8_t>(value);
	bytes[at + 1] = static_cast<uint8_t>(value >> 8);
}

inline void put_u32(std::vector<uint8_t> &bytes, size_t at, uint32_t value)
{
	for (size_t i = 0; i < 4; ++i)
		bytes[at + i] = static_cast<uint8_t>(value >> (8 * i));
}

// Sets bytes[at] so that [begin, end) sums to zero mod 256, the checksum
// of ACPI tables (ACPI 6.4 5.2.6) and of the MP spec's structures (4.1, 4.2).
inline void fix_checksum(std::vector<uint8_t> &bytes, size_t begin, size_t end, size_t at)
{
	bytes[at] = 0;
	uint8_t sum = std::accumulate(bytes.begin() + static_cast<long>(begin), bytes.begin() + static_cast<long>(end),
				      uint8_t{0});
	bytes[at] = static_cast<uint8_t>(-sum);
}

}  // namespace kairos::vmm
