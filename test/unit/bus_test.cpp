#include <catch2/catch.hpp>

#include <vector>

#include "devices/bus.h"

using kairos::devices::Bus;
using kairos::devices::BusDevice;

namespace {

class Recorder : public BusDevice {
public:
	std::string name() const override { return "recorder"; }
	void read(uint64_t offset, std::span<uint8_t> data) override
	{
		for (auto &byte : data)
			byte = static_cast<uint8_t>(offset);
	}
	void write(uint64_t offset, std::span<const uint8_t> data) override { writes.push_back({offset, data[0]}); }
	std::vector<std::pair<uint64_t, uint8_t>> writes;
};

}  // namespace

TEST_CASE("bus routes accesses by range and passes the offset", "[bus]")
{
	Bus bus;
	auto device = std::make_shared<Recorder>();
	REQUIRE(bus.add(0x3f8, 8, device).ok());

	uint8_t value = 0;
	REQUIRE(bus.read(0x3fd, {&value, 1}));
	CHECK(value == 5);
	uint8_t out = 0x41;
	REQUIRE(bus.write(0x3f8, {&out, 1}));
	REQUIRE(device->writes.size() == 1);
	CHECK(device->writes[0].first == 0);
	CHECK(device->writes[0].second == 0x41);
}

TEST_CASE("unclaimed reads float high and are counted", "[bus]")
{
	Bus bus;
	REQUIRE(bus.add(0x60, 1, std::make_shared<Recorder>()).ok());
	uint8_t data[4] = {};
	CHECK_FALSE(bus.read(0x61, data));
	CHECK(data[0] == 0xff);
	CHECK(data[3] == 0xff);
	CHECK(bus.unclaimed_accesses() == 1);
}

TEST_CASE("overlapping ranges are refused with both names", "[bus]")
{
	Bus bus;
	REQUIRE(bus.add(0x70, 2, std::make_shared<Recorder>()).ok());
	auto overlap = bus.add(0x71, 4, std::make_shared<Recorder>());
	REQUIRE_FALSE(overlap.ok());
	CHECK(overlap.error().message.find("overlaps") != std::string::npos);
	CHECK_FALSE(bus.add(0x6f, 2, std::make_shared<Recorder>()).ok());
	CHECK(bus.add(0x72, 2, std::make_shared<Recorder>()).ok());
	CHECK_FALSE(bus.add(0x10, 0, std::make_shared<Recorder>()).ok());
}
