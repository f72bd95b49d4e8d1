#include <catch2/catch.hpp>

#include <cstring>
#include <numeric>

#include "vmm/layout.h"
#include "vmm/mptable.h"

using kairos::vmm::build_mp_table;

namespace {

uint8_t sum(const std::vector<uint8_t> &bytes, size_t begin, size_t length)
{
	return std::accumulate(bytes.begin() + static_cast<long>(begin),
			       bytes.begin() + static_cast<long>(begin + length), uint8_t{0});
}

template <typename T>
T field(const std::vector<uint8_t> &bytes, size_t offset)
{
	T value;
	std::memcpy(&value, &bytes[offset], sizeof(T));
	return value;
}

struct ParsedTable {
	std::vector<uint8_t> cpu_ids;
	int bootstrap_cpus = 0;
	int buses = 0;
	int ioapic_id = -1;
	uint32_t ioapic_address = 0;
	std::vector<std::pair<uint8_t, uint8_t>> isa_routes;  // irq -> pin
	int local_entries = 0;
};

// Walks the configuration table the way Linux's mpparse.c does.
ParsedTable walk(const std::vector<uint8_t> &table, uint64_t address)
{
	ParsedTable parsed;
	size_t header = field<uint32_t>(table, 4) - address;
	size_t entries = field<uint16_t>(table, header + 34);
	size_t at = header + 44;
	for (size_t i = 0; i < entries; ++i) {
		switch (table.at(at)) {
		case 0:
			parsed.cpu_ids.push_back(table[at + 1]);
			parsed.bootstrap_cpus += (table[at + 3] & 2) ? 1 : 0;
			at += 20;
			break;
		case 1:
			++parsed.buses;
			at += 8;
			break;
		case 2:
			parsed.ioapic_id = table[at + 1];
			parsed.ioapic_address = field<uint32_t>(table, at + 4);
			at += 8;
			break;
		case 3:
			parsed.isa_routes.push_back({table[at + 5], table[at + 7]});
			at += 8;
			break;
		case 4:
			++parsed.local_entries;
			at += 8;
			break;
		default:
			FAIL("unknown MP entry type " << int(table[at]));
		}
	}
	CHECK(at == table.size());
	return parsed;
}

}  // namespace

TEST_CASE("MP floating pointer and table have valid signatures and checksums", "[mptable]")
{
	const uint64_t address = kairos::layout::kMpTableAddr;
	for (uint32_t cpus : {1u, 4u, 64u}) {
		auto table = build_mp_table(address, cpus);
		REQUIRE(std::memcmp(table.data(), "_MP_", 4) == 0);
		CHECK(table[8] == 1);  // 16 bytes
		CHECK(table[9] == 4);  // spec 1.4
		CHECK(sum(table, 0, 16) == 0);
		size_t header = field<uint32_t>(table, 4) - address;
		CHECK(header == 16);
		REQUIRE(std::memcmp(&table[header], "PCMP", 4) == 0);
		size_t length = field<uint16_t>(table, header + 4);
		CHECK(header + length == table.size());
		CHECK(sum(table, header, length) == 0);
		CHECK(field<uint32_t>(table, header + 36) == kairos::layout::kLapicAddr);
		CHECK(table.size() <= kairos::layout::kMpTableMaxSize);
	}
}

TEST_CASE("MP table lists every vCPU, one bootstrap CPU, the IOAPIC and ISA routes", "[mptable]")
{
	auto table = build_mp_table(kairos::layout::kMpTableAddr, 4);
	ParsedTable parsed = walk(table, kairos::layout::kMpTableAddr);
	CHECK(parsed.cpu_ids == std::vector<uint8_t>{0, 1, 2, 3});
	CHECK(parsed.bootstrap_cpus == 1);
	CHECK(parsed.buses == 1);
	CHECK(parsed.ioapic_id == 4);  // ids must not clash with LAPIC ids
	CHECK(parsed.ioapic_address == kairos::layout::kIoapicAddr);
	REQUIRE(parsed.isa_routes.size() == 16);
	for (uint8_t irq = 0; irq < 16; ++irq)
		CHECK(parsed.isa_routes[irq] == std::make_pair(irq, irq));
	CHECK(parsed.local_entries == 2);
}

TEST_CASE("a corrupted byte breaks the checksum", "[mptable]")
{
	auto table = build_mp_table(kairos::layout::kMpTableAddr, 2);
	table[60] ^= 0x5a;
	CHECK(sum(table, 16, table.size() - 16) != 0);
}
