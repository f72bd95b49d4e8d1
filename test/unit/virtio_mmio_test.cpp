#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <thread>

#include "base/error.h"
#include "devices/virtio/mmio_transport.h"

using kairos::Status;
using kairos::devices::virtio::DeviceStats;
using kairos::devices::virtio::Interrupt;
using kairos::devices::virtio::kFeatureEventIdx;
using kairos::devices::virtio::kFeatureIndirectDesc;
using kairos::devices::virtio::kFeatureVersion1;
using kairos::devices::virtio::MmioTransport;
using kairos::devices::virtio::QueueConfig;
using kairos::devices::virtio::VirtioDevice;

namespace {

constexpr uint64_t kFeatureDeviceSpecific = 1ULL << 5;
constexpr uint64_t kOffered = kFeatureVersion1 | kFeatureEventIdx | kFeatureIndirectDesc | kFeatureDeviceSpecific;

// Device status bits (section 2.1).
constexpr uint32_t kAcknowledge = 1;
constexpr uint32_t kDriver = 2;
constexpr uint32_t kDriverOk = 4;
constexpr uint32_t kFeaturesOk = 8;
constexpr uint32_t kNeedsReset = 64;

class FakeDevice : public VirtioDevice {
public:
	std::string name() const override { return "virtio-fake test"; }
	uint32_t device_type() const override { return 2; }
	uint64_t features() const override { return kOffered; }
	uint16_t queue_count() const override { return 2; }
	uint16_t queue_max_size() const override { return 256; }

	void read_config(uint64_t offset, std::span<uint8_t> data) const override
	{
		for (size_t i = 0; i < data.size(); ++i)
			data[i] = offset + i < config.size() ? config[offset + i] : 0;
	}
	void write_config(uint64_t offset, std::span<const uint8_t> data) override
	{
		for (size_t i = 0; i < data.size(); ++i)
			if (offset + i < config.size())
				config[offset + i] = data[i];
	}

	Status activate(uint64_t acked_features, std::vector<QueueConfig> queue_configs, Interrupt &irq) override
	{
		++activations;
		acked = acked_features;
		queues = std::move(queue_configs);
		interrupt = &irq;
		if (fail_activate)
			return kairos::make_error("the fake refuses");
		return {};
	}
	void reset() override
	{
		++resets;
		interrupt = nullptr;
	}
	int notify_fd(uint16_t) const override { return -1; }
	void notify(uint16_t index) override { notified.push_back(index); }
	Status start(std::function<Status()>) override { return {}; }
	void stop() override {}
	DeviceStats stats() const override { return {}; }

	std::vector<uint8_t> config = {1, 2, 3, 4, 5, 6, 7, 8};
	bool fail_activate = false;
	int activations = 0;
	int resets = 0;
	uint64_t acked = 0;
	std::vector<QueueConfig> queues;
	Interrupt *interrupt = nullptr;
	std::vector<uint16_t> notified;
};

struct Board {
	explicit Board(std::shared_ptr<FakeDevice> fake = std::make_shared<FakeDevice>()) : device(std::move(fake)) {}

	std::shared_ptr<FakeDevice> device;
	std::atomic<int> raised{0};
	MmioTransport transport{device, [this] { ++raised; }};

	uint32_t read(uint64_t offset)
	{
		uint32_t value = 0;
		transport.read(offset, {reinterpret_cast<uint8_t *>(&value), 4});
		return value;
	}
	void write(uint64_t offset, uint32_t value)
	{
		transport.write(offset, {reinterpret_cast<const uint8_t *>(&value), 4});
	}
	void negotiate(uint64_t features)
	{
		write(0x70, kAcknowledge);
		write(0x70, kAcknowledge | kDriver);
		write(0x24, 0);
		write(0x20, static_cast<uint32_t>(features));
		write(0x24, 1);
		write(0x20, static_cast<uint32_t>(features >> 32));
		write(0x70, kAcknowledge | kDriver | kFeaturesOk);
	}
	void set_up_queue(uint16_t index, uint16_t size, uint64_t base)
	{
		write(0x30, index);
		write(0x38, size);
		write(0x80, static_cast<uint32_t>(base));
		write(0x84, static_cast<uint32_t>(base >> 32));
		write(0x90, static_cast<uint32_t>(base + 0x1000));
		write(0x94, static_cast<uint32_t>((base + 0x1000) >> 32));
		write(0xa0, static_cast<uint32_t>(base + 0x2000));
		write(0xa4, static_cast<uint32_t>((base + 0x2000) >> 32));
		write(0x44, 1);
	}
	void driver_ok() { write(0x70, kAcknowledge | kDriver | kFeaturesOk | kDriverOk); }
};

}  // namespace

TEST_CASE("virtio-mmio identifies itself with version 2 registers", "[virtio]")
{
	Board board;
	CHECK(board.read(0x000) == 0x74726976);
	CHECK(board.read(0x004) == 2);
	CHECK(board.read(0x008) == 2);
	CHECK(board.read(0x00c) == 0x0053524b);
	CHECK(board.transport.name() == "virtio-fake test");

	// Not 32 bits wide or not aligned: ignored, reads as 0.
	uint8_t byte = 0xff;
	board.transport.read(0x000, {&byte, 1});
	CHECK(byte == 0);
	uint16_t half = 0xffff;
	board.transport.read(0x000, {reinterpret_cast<uint8_t *>(&half), 2});
	CHECK(half == 0);
	CHECK(board.read(0x002) == 0);
	const uint8_t status = kAcknowledge;
	board.transport.write(0x70, {&status, 1});
	CHECK(board.transport.status() == 0);
}

TEST_CASE("virtio-mmio device features by selector", "[virtio]")
{
	Board board;
	board.write(0x14, 0);
	CHECK(board.read(0x10) == static_cast<uint32_t>(kOffered));
	board.write(0x14, 1);
	CHECK(board.read(0x10) == static_cast<uint32_t>(kOffered >> 32));
	board.write(0x14, 2);
	CHECK(board.read(0x10) == 0);
}

TEST_CASE("virtio-mmio FEATURES_OK only for offered features with VERSION_1", "[virtio]")
{
	Board board;
	SECTION("a subset with VERSION_1")
	{
		board.negotiate(kFeatureVersion1 | kFeatureEventIdx);
		CHECK(board.read(0x70) == (kAcknowledge | kDriver | kFeaturesOk));
	}
	SECTION("a feature not offered")
	{
		board.negotiate(kFeatureVersion1 | (1ULL << 6));
		CHECK(board.read(0x70) == (kAcknowledge | kDriver));
		board.driver_ok();
		CHECK(board.device->activations == 0);
	}
	SECTION("no VERSION_1 (legacy driver)")
	{
		board.negotiate(kFeatureEventIdx);
		CHECK(board.read(0x70) == (kAcknowledge | kDriver));
	}
	SECTION("features frozen after FEATURES_OK")
	{
		board.negotiate(kFeatureVersion1);
		board.write(0x24, 0);
		board.write(0x20, static_cast<uint32_t>(kFeatureEventIdx));
		board.set_up_queue(0, 8, 0x10000);
		board.driver_ok();
		CHECK(board.device->acked == kFeatureVersion1);
	}
	SECTION("status bits out of order are not set")
	{
		board.write(0x70, kDriver);
		CHECK(board.read(0x70) == 0);
		board.write(0x70, kAcknowledge | kDriverOk);
		CHECK(board.read(0x70) == kAcknowledge);
		CHECK(board.device->activations == 0);
	}
}

TEST_CASE("virtio-mmio queue registers and DRIVER_OK hand the queues to the device", "[virtio]")
{
	Board board;
	board.negotiate(kFeatureVersion1 | kFeatureEventIdx);
	board.write(0x30, 0);
	CHECK(board.read(0x34) == 256);
	CHECK(board.read(0x38) == 256);  // QueueNum starts at the maximum
	for (uint32_t bad : {0u, 3u, 512u, 100u}) {
		board.write(0x38, bad);
		CHECK(board.read(0x38) == 256);
	}
	board.write(0x30, 2);
	CHECK(board.read(0x34) == 0);  // no queue 2
	board.write(0x38, 16);
	board.write(0x44, 1);
	CHECK(board.read(0x44) == 0);

	board.set_up_queue(0, 64, 0x1'0000'0000);
	CHECK(board.read(0x44) == 1);
	CHECK(board.read(0x80) == 0);
	CHECK(board.read(0x84) == 1);
	// Frozen while ready.
	board.write(0x38, 32);
	board.write(0x80, 0x5000);
	CHECK(board.read(0x38) == 64);
	CHECK(board.read(0x80) == 0);

	board.driver_ok();
	CHECK(board.read(0x70) == (kAcknowledge | kDriver | kFeaturesOk | kDriverOk));
	REQUIRE(board.device->activations == 1);
	CHECK(board.device->acked == (kFeatureVersion1 | kFeatureEventIdx));
	REQUIRE(board.device->queues.size() == 2);
	const QueueConfig &queue = board.device->queues[0];
	CHECK(queue.size == 64);
	CHECK(queue.desc_gpa == 0x1'0000'0000);
	CHECK(queue.avail_gpa == 0x1'0000'1000);
	CHECK(queue.used_gpa == 0x1'0000'2000);
	CHECK(queue.event_idx);
	CHECK_FALSE(queue.indirect_desc);
	CHECK(board.device->queues[1].size == 0);  // never made ready

	// Once only; queue registers frozen after DRIVER_OK.
	board.driver_ok();
	CHECK(board.device->activations == 1);
	board.write(0x30, 1);
	board.write(0x38, 8);
	board.write(0x44, 1);
	CHECK(board.read(0x44) == 0);
	CHECK(board.read(0x38) == 256);
}

TEST_CASE("virtio-mmio QueueNotify reaches the device for existing queues", "[virtio]")
{
	Board board;
	board.write(0x50, 1);
	board.write(0x50, 2);
	board.write(0x50, 0xffff'ffff);
	board.write(0x50, 0);
	CHECK(board.device->notified == std::vector<uint16_t>{1, 0});
}

TEST_CASE("virtio-mmio interrupts: used buffers, acknowledge, needs reset", "[virtio]")
{
	Board board;
	board.negotiate(kFeatureVersion1);
	board.set_up_queue(0, 8, 0x10000);
	board.driver_ok();
	REQUIRE(board.device->interrupt);

	board.device->interrupt->used_buffers();
	CHECK(board.raised == 1);
	CHECK(board.read(0x60) == 1);
	board.write(0x64, 1);
	CHECK(board.read(0x60) == 0);

	board.device->interrupt->needs_reset();
	CHECK(board.raised == 2);
	CHECK(board.read(0x60) == 2);
	CHECK((board.read(0x70) & kNeedsReset));
	// The driver cannot set or clear it; only a reset does.
	board.write(0x70, kAcknowledge | kDriver | kFeaturesOk | kDriverOk);
	CHECK((board.read(0x70) & kNeedsReset));
}

TEST_CASE("virtio-mmio a failed activate sets DEVICE_NEEDS_RESET", "[virtio]")
{
	Board board;
	board.device->fail_activate = true;
	board.negotiate(kFeatureVersion1);
	board.driver_ok();
	CHECK(board.device->activations == 1);
	CHECK(board.read(0x70) == (kAcknowledge | kDriver | kFeaturesOk | kDriverOk | kNeedsReset));
	CHECK(board.read(0x60) == 2);
	CHECK(board.raised == 1);
	CHECK(board.transport.last_error() == "the fake refuses");
}

TEST_CASE("virtio-mmio writing 0 to Status resets device and registers", "[virtio]")
{
	Board board;
	board.negotiate(kFeatureVersion1 | kFeatureIndirectDesc);
	board.set_up_queue(0, 8, 0x10000);
	board.driver_ok();
	board.device->interrupt->used_buffers();
	board.write(0x14, 1);
	board.write(0x30, 1);

	board.write(0x70, 0);
	CHECK(board.device->resets == 1);
	CHECK(board.read(0x70) == 0);
	CHECK(board.read(0x60) == 0);
	CHECK(board.read(0x10) == static_cast<uint32_t>(kOffered));  // selector back to 0
	CHECK(board.read(0x44) == 0);                                // QueueSel 0, not ready
	CHECK(board.read(0x38) == 256);
	CHECK(board.read(0x80) == 0);

	// And the device can be brought up again.
	board.negotiate(kFeatureVersion1);
	board.set_up_queue(0, 16, 0x20000);
	board.driver_ok();
	CHECK(board.device->activations == 2);
	CHECK(board.device->acked == kFeatureVersion1);
	CHECK(board.device->queues[0].size == 16);
}

TEST_CASE("virtio-mmio config space is byte-granular from 0x100", "[virtio]")
{
	Board board;
	uint8_t byte = 0;
	board.transport.read(0x103, {&byte, 1});
	CHECK(byte == 4);
	uint16_t half = 0;
	board.transport.read(0x106, {reinterpret_cast<uint8_t *>(&half), 2});
	CHECK(half == 0x0807);
	CHECK(board.read(0x104) == 0x08070605);
	CHECK(board.read(0x108) == 0);  // past the device's config
	const uint8_t value = 0x42;
	board.transport.write(0x101, {&value, 1});
	CHECK(board.device->config[1] == 0x42);
	CHECK(board.read(0xfc) == 0);  // ConfigGeneration
}

namespace {

// A device whose thread signals used buffers without pause, and whose reset
// waits for that thread: the lock order must keep this from deadlocking.
class BusyDevice : public FakeDevice {
public:
	Status activate(uint64_t, std::vector<QueueConfig>, Interrupt &irq) override
	{
		running = true;
		thread = std::thread([this, &irq] {
			while (running)
				irq.used_buffers();
		});
		return {};
	}
	void reset() override
	{
		running = false;
		if (thread.joinable())
			thread.join();
	}
	~BusyDevice() override { reset(); }

	std::atomic<bool> running{false};
	std::thread thread;
};

}  // namespace

TEST_CASE("virtio-mmio reset while the device thread raises interrupts does not deadlock", "[virtio]")
{
	Board board(std::make_shared<BusyDevice>());
	for (int round = 0; round < 50; ++round) {
		board.negotiate(kFeatureVersion1);
		board.driver_ok();
		REQUIRE(board.read(0x70) == (kAcknowledge | kDriver | kFeaturesOk | kDriverOk));
		// Reset while the thread is inside used_buffers, not before it ran.
		const int before = board.raised;
		while (board.raised < before + 10)
			std::this_thread::yield();
		board.write(0x70, 0);
		REQUIRE(board.transport.status() == 0);
	}
}

TEST_CASE("virtio-mmio destroying the transport resets the device", "[virtio]")
{
	auto device = std::make_shared<FakeDevice>();
	{
		MmioTransport transport(device, [] {});
	}
	CHECK(device->resets == 1);
}
