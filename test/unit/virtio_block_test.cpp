#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "base/error.h"
#include "devices/virtio/block.h"
#include "devices/virtio/mmio_transport.h"
#include "test/unit/fake_guest_ram.h"

using kairos::Status;
using kairos::devices::virtio::BlockOptions;
using kairos::devices::virtio::DeviceStats;
using kairos::devices::virtio::Interrupt;
using kairos::devices::virtio::kFeatureEventIdx;
using kairos::devices::virtio::kFeatureIndirectDesc;
using kairos::devices::virtio::kFeatureVersion1;
using kairos::devices::virtio::MmioTransport;
using kairos::devices::virtio::open_block;
using kairos::devices::virtio::VirtioDevice;
using kairos::test::DriverRings;
using kairos::test::FakeGuestRam;
using kairos::test::kDescIndirect;
using kairos::test::kDescNext;
using kairos::test::kDescWrite;

namespace {

constexpr uint64_t kImageBytes = 1 << 20;  // 2048 sectors
constexpr uint64_t kSectors = kImageBytes / 512;
constexpr uint16_t kQueueSize = 32;
constexpr uint64_t kRings = 0x1000;
constexpr uint64_t kHeaders = 0x10000;  // 16 bytes per request
constexpr uint64_t kStatuses = 0x11000;
constexpr uint64_t kTables = 0x12000;   // indirect tables, 256 bytes each
constexpr uint64_t kBuffers = 0x20000;  // 0x10000 per request

constexpr uint32_t kTypeIn = 0;
constexpr uint32_t kTypeOut = 1;
constexpr uint32_t kTypeFlush = 4;
constexpr uint32_t kTypeGetId = 8;
constexpr uint8_t kOk = 0;
constexpr uint8_t kIoErr = 1;
constexpr uint8_t kUnsupported = 2;

uint8_t pattern(uint64_t byte)
{
	return static_cast<uint8_t>(byte * 7 + byte / 512);
}

// A raw image in a fresh directory, filled with pattern().
class TempImage {
public:
	explicit TempImage(uint64_t bytes = kImageBytes)
	{
		char dir[] = "/tmp/kairos-virtio-block-XXXXXX";
		REQUIRE(mkdtemp(dir));
		dir_ = dir;
		path_ = dir_ + "/disk.img";
		std::vector<uint8_t> data(bytes);
		for (uint64_t i = 0; i < bytes; ++i)
			data[i] = pattern(i);
		int fd = open(path_.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		REQUIRE(fd >= 0);
		REQUIRE(write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
		close(fd);
	}
	~TempImage()
	{
		unlink(path_.c_str());
		rmdir(dir_.c_str());
	}
	const std::string &path() const { return path_; }
	const std::string &dir() const { return dir_; }

	std::vector<uint8_t> read(uint64_t offset, size_t length) const
	{
		std::vector<uint8_t> data(length);
		int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
		REQUIRE(fd >= 0);
		REQUIRE(pread(fd, data.data(), length, static_cast<off_t>(offset)) == static_cast<ssize_t>(length));
		close(fd);
		return data;
	}

private:
	std::string dir_;
	std::string path_;
};

class RecordingInterrupt : public Interrupt {
public:
	void used_buffers() override { ++used; }
	void needs_reset() override { ++resets_needed; }
	std::atomic<int> used{0};
	std::atomic<int> resets_needed{0};
};

// A guest driver of one virtio-blk device: builds requests in FakeGuestRam
// and waits for the device to use them.
class Driver {
public:
	enum class Via { Activate, Transport };

	// Via::Transport brings the device up as Linux's virtio_mmio driver
	// does (section 3.1.1, through the registers); Via::Activate calls
	// the device directly.
	explicit Driver(const BlockOptions &options, bool event_idx = true, Via via = Via::Activate)
		: rings(ram, kRings, kQueueSize, event_idx, true)
	{
		auto opened = open_block(ram, options);
		REQUIRE(opened.ok());
		device = std::move(opened).value();
		features = kFeatureVersion1 | kFeatureIndirectDesc | (event_idx ? kFeatureEventIdx : 0);
		REQUIRE(device->start({}).ok());
		if (via == Via::Activate) {
			REQUIRE(device->activate(features, {rings.config()}, interrupt).ok());
			return;
		}
		transport = std::make_unique<MmioTransport>(device, [this] { ++raised; });
		bring_up();
	}
	~Driver()
	{
		transport.reset();
		device->stop();
	}

	void write_register(uint64_t offset, uint32_t value)
	{
		transport->write(offset, {reinterpret_cast<const uint8_t *>(&value), 4});
	}
	uint32_t read_register(uint64_t offset)
	{
		uint32_t value = 0;
		transport->read(offset, {reinterpret_cast<uint8_t *>(&value), 4});
		return value;
	}

	void bring_up()
	{
		write_register(0x70, 1);      // ACKNOWLEDGE
		write_register(0x70, 1 | 2);  // DRIVER
		write_register(0x14, 1);
		REQUIRE((read_register(0x10) & 1));  // VERSION_1, feature 32
		write_register(0x24, 0);
		write_register(0x20, static_cast<uint32_t>(features));
		write_register(0x24, 1);
		write_register(0x20, static_cast<uint32_t>(features >> 32));
		write_register(0x70, 1 | 2 | 8);  // FEATURES_OK
		REQUIRE(read_register(0x70) == (1 | 2 | 8));
		write_register(0x30, 0);
		REQUIRE(read_register(0x34) == 256);
		write_register(0x38, kQueueSize);
		write_register(0x80, static_cast<uint32_t>(rings.config().desc_gpa));
		write_register(0x90, static_cast<uint32_t>(rings.config().avail_gpa));
		write_register(0xa0, static_cast<uint32_t>(rings.config().used_gpa));
		write_register(0x44, 1);
		write_register(0x70, 1 | 2 | 8 | 4);  // DRIVER_OK
		REQUIRE(read_register(0x70) == (1 | 2 | 8 | 4));
	}

	void notify()
	{
		if (transport)
			write_register(0x50, 0);
		else
			device->notify(0);
	}

	// Posts a request in descriptors 3*slot..3*slot+2 (header, data,
	// status); data_length 0 leaves the data descriptor out.
	uint16_t post(uint16_t slot, uint32_t type, uint64_t sector, uint32_t data_length, bool data_writable)
	{
		const uint16_t head = static_cast<uint16_t>(3 * slot);
		const uint64_t header = kHeaders + 16 * slot;
		ram.write<uint32_t>(header, type);
		ram.write<uint32_t>(header + 4, 0);
		ram.write<uint64_t>(header + 8, sector);
		ram.write<uint8_t>(status_gpa(slot), 0xff);
		rings.set_descriptor(head, header, 16, kDescNext, head + 1);
		if (data_length > 0) {
			rings.set_descriptor(head + 1, data_gpa(slot), data_length,
					     kDescNext | (data_writable ? kDescWrite : 0), head + 2);
			rings.set_descriptor(head + 2, status_gpa(slot), 1, kDescWrite);
		} else {
			rings.set_descriptor(head + 1, status_gpa(slot), 1, kDescWrite);
		}
		rings.make_available(head);
		return head;
	}

	// Sends one request and waits for it; returns its status byte.
	uint8_t request(uint32_t type, uint64_t sector, uint32_t data_length, bool data_writable)
	{
		const uint16_t used_before = rings.used_idx();
		post(0, type, sector, data_length, data_writable);
		notify();
		REQUIRE(wait_used(static_cast<uint16_t>(used_before + 1)));
		last_used_len = rings.used_len(used_before);
		return ram.read<uint8_t>(status_gpa(0));
	}

	bool wait_used(uint16_t idx)
	{
		const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
		while (rings.used_idx() != idx) {
			if (std::chrono::steady_clock::now() > deadline)
				return false;
			std::this_thread::sleep_for(std::chrono::microseconds(200));
		}
		return true;
	}

	static uint64_t status_gpa(uint16_t slot) { return kStatuses + slot; }
	static uint64_t data_gpa(uint16_t slot) { return kBuffers + 0x10000 * uint64_t{slot}; }

	FakeGuestRam ram{4 << 20};
	DriverRings rings;
	RecordingInterrupt interrupt;
	std::shared_ptr<VirtioDevice> device;
	std::unique_ptr<MmioTransport> transport;
	std::atomic<int> raised{0};
	uint64_t features = 0;
	uint32_t last_used_len = 0;
};

BlockOptions options_for(const TempImage &image, bool read_only = false)
{
	BlockOptions options;
	options.id = "rootfs";
	options.path = image.path();
	options.read_only = read_only;
	return options;
}

}  // namespace

TEST_CASE("virtio-blk offers its features and config space", "[virtio]")
{
	TempImage image;
	FakeGuestRam ram(1 << 20);
	auto device = open_block(ram, options_for(image));
	REQUIRE(device.ok());
	VirtioDevice &blk = **device;
	CHECK(blk.device_type() == 2);
	CHECK(blk.name() == "virtio-blk rootfs");
	CHECK(blk.queue_count() == 1);
	CHECK(blk.queue_max_size() == 256);
	const uint64_t expected =
		kFeatureVersion1 | kFeatureEventIdx | kFeatureIndirectDesc | (1ULL << 9) | (1ULL << 2) | (1ULL << 6);
	CHECK(blk.features() == expected);
	CHECK(blk.notify_fd(0) >= 0);
	CHECK(blk.notify_fd(1) == -1);

	uint64_t capacity = 0;
	blk.read_config(0, {reinterpret_cast<uint8_t *>(&capacity), 8});
	CHECK(capacity == kSectors);
	uint32_t seg_max = 0;
	blk.read_config(12, {reinterpret_cast<uint8_t *>(&seg_max), 4});
	CHECK(seg_max == 254);
	uint32_t blk_size = 0;
	blk.read_config(20, {reinterpret_cast<uint8_t *>(&blk_size), 4});
	CHECK(blk_size == 512);
	uint8_t past = 0xff;
	blk.read_config(200, {&past, 1});
	CHECK(past == 0);

	auto read_only = open_block(ram, options_for(image, true));
	CHECK_FALSE(read_only.ok());  // the read-write one holds the lock
	device.value().reset();
	read_only = open_block(ram, options_for(image, true));
	REQUIRE(read_only.ok());
	CHECK(((*read_only)->features() & (1ULL << 5)));
}

TEST_CASE("virtio-blk reads, writes, flushes and answers GET_ID", "[virtio]")
{
	TempImage image;
	Driver driver(options_for(image));

	SECTION("read")
	{
		CHECK(driver.request(kTypeIn, 3, 1024, true) == kOk);
		CHECK(driver.last_used_len == 1025);
		const uint8_t *data = driver.ram.at(Driver::data_gpa(0));
		bool same = true;
		for (uint64_t i = 0; i < 1024; ++i)
			same = same && data[i] == pattern(3 * 512 + i);
		CHECK(same);
		CHECK(driver.device->stats().bytes_read == 1024);
	}
	SECTION("write, then flush")
	{
		uint8_t *data = driver.ram.at(Driver::data_gpa(0));
		for (int i = 0; i < 512; ++i)
			data[i] = static_cast<uint8_t>(0xa5 ^ i);
		CHECK(driver.request(kTypeOut, kSectors - 1, 512, false) == kOk);
		CHECK(driver.last_used_len == 1);
		const auto written = image.read((kSectors - 1) * 512, 512);
		CHECK(std::memcmp(written.data(), data, 512) == 0);
		CHECK(driver.request(kTypeFlush, 0, 0, false) == kOk);
		const DeviceStats stats = driver.device->stats();
		CHECK(stats.bytes_written == 512);
		CHECK(stats.requests == 2);
		CHECK(stats.errors == 0);
	}
	SECTION("GET_ID, zero-padded")
	{
		std::memset(driver.ram.at(Driver::data_gpa(0)), 0xee, 20);
		CHECK(driver.request(kTypeGetId, 0, 20, true) == kOk);
		CHECK(driver.last_used_len == 21);
		const char *id = reinterpret_cast<const char *>(driver.ram.at(Driver::data_gpa(0)));
		CHECK(std::string(id, 6) == "rootfs");
		CHECK(std::all_of(id + 6, id + 20, [](char c) { return c == 0; }));
	}
	SECTION("unsupported type")
	{
		CHECK(driver.request(11, 0, 512, true) == kUnsupported);
		CHECK(driver.device->stats().errors == 1);
	}
	SECTION("out of range and misaligned lengths")
	{
		CHECK(driver.request(kTypeIn, kSectors, 512, true) == kIoErr);
		CHECK(driver.request(kTypeIn, kSectors - 1, 1024, true) == kIoErr);
		CHECK(driver.request(kTypeOut, ~uint64_t{0}, 512, false) == kIoErr);
		CHECK(driver.request(kTypeIn, 0, 100, true) == kIoErr);
		CHECK(driver.request(kTypeIn, kSectors - 1, 512, true) == kOk);
		CHECK(driver.device->stats().errors == 4);
	}
	SECTION("a header shorter than 16 bytes")
	{
		driver.post(0, kTypeIn, 0, 512, true);
		driver.rings.set_descriptor(0, kHeaders, 8, kDescNext, 1);
		driver.device->notify(0);
		REQUIRE(driver.wait_used(1));
		CHECK(driver.ram.read<uint8_t>(Driver::status_gpa(0)) == kIoErr);
	}
}

TEST_CASE("virtio-blk behind virtio-mmio: bring-up, a read, its interrupt, a reset", "[virtio]")
{
	TempImage image;
	Driver driver(options_for(image), true, Driver::Via::Transport);
	CHECK(driver.request(kTypeIn, 1, 512, true) == kOk);
	CHECK(driver.ram.at(Driver::data_gpa(0))[0] == pattern(512));
	// EVENT_IDX with used_event 0: the first used buffer interrupts.
	const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
	while (driver.raised == 0 && std::chrono::steady_clock::now() < deadline)
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	CHECK(driver.raised == 1);
	CHECK(driver.read_register(0x60) == 1);
	driver.write_register(0x64, 1);
	CHECK(driver.device->stats().interrupts == 1);

	// A malformed chain: DEVICE_NEEDS_RESET and a configuration interrupt.
	driver.rings.set_descriptor(0, kHeaders, 16, kDescNext, 0);
	driver.rings.make_available(0);
	driver.notify();
	while (!(driver.read_register(0x70) & 0x40) && std::chrono::steady_clock::now() < deadline)
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	CHECK((driver.read_register(0x70) & 0x40));
	CHECK(driver.read_register(0x60) == 2);

	// The driver resets and starts over on fresh rings.
	driver.write_register(0x70, 0);
	CHECK(driver.read_register(0x70) == 0);
	std::memset(driver.ram.at(kRings), 0, 0x1000);
	driver.bring_up();
	CHECK(driver.request(kTypeIn, 2, 512, true) == kOk);
	CHECK(driver.ram.at(Driver::data_gpa(0))[0] == pattern(1024));
}

TEST_CASE("virtio-blk read-only drives refuse writes", "[virtio]")
{
	TempImage image;
	Driver driver(options_for(image, true));
	std::memset(driver.ram.at(Driver::data_gpa(0)), 0, 512);
	CHECK(driver.request(kTypeOut, 0, 512, false) == kIoErr);
	CHECK(image.read(0, 1)[0] == pattern(0));
	CHECK(driver.request(kTypeIn, 0, 512, true) == kOk);
	CHECK(driver.request(kTypeFlush, 0, 0, false) == kOk);
}

TEST_CASE("virtio-blk serves requests in parallel, also through indirect tables", "[virtio]")
{
	TempImage image;
	const bool event_idx = GENERATE(false, true);
	Driver driver(options_for(image), event_idx);
	// Five direct reads, then five reads through indirect tables.
	for (uint16_t slot = 0; slot < 5; ++slot)
		driver.post(slot, kTypeIn, slot * 8, 4096, true);
	for (uint16_t slot = 5; slot < 10; ++slot) {
		const uint64_t table = kTables + 256 * slot;
		const uint64_t header = kHeaders + 16 * slot;
		driver.ram.write<uint32_t>(header, kTypeIn);
		driver.ram.write<uint64_t>(header + 8, slot * 8);
		driver.rings.write_descriptor(table, header, 16, kDescNext, 1);
		// The data split in two, to check the iovecs follow the chain.
		driver.rings.write_descriptor(table + 16, Driver::data_gpa(slot), 1536, kDescNext | kDescWrite, 2);
		driver.rings.write_descriptor(table + 32, Driver::data_gpa(slot) + 0x8000, 2560, kDescNext | kDescWrite,
					      3);
		driver.rings.write_descriptor(table + 48, Driver::status_gpa(slot), 1, kDescWrite);
		driver.rings.set_descriptor(static_cast<uint16_t>(3 * slot), table, 64, kDescIndirect);
		driver.rings.make_available(static_cast<uint16_t>(3 * slot));
	}
	driver.device->notify(0);
	REQUIRE(driver.wait_used(10));
	for (uint16_t slot = 0; slot < 10; ++slot) {
		CHECK(driver.ram.read<uint8_t>(Driver::status_gpa(slot)) == kOk);
		const uint8_t *data = driver.ram.at(Driver::data_gpa(slot));
		const uint64_t start = slot * 8 * 512;
		CHECK(data[0] == pattern(start));
		CHECK(data[1535] == pattern(start + 1535));
		const uint64_t second = slot < 5 ? 1536 : 0x8000;
		CHECK(data[second] == pattern(start + 1536));
		CHECK(data[second + 2559] == pattern(start + 4095));
	}
	const DeviceStats stats = driver.device->stats();
	CHECK(stats.requests == 10);
	CHECK(stats.bytes_read == 10 * 4096);
	CHECK(stats.interrupts >= 1);
	CHECK(driver.interrupt.used >= 1);
}

TEST_CASE("virtio-blk: a malformed chain asks for a reset, and a reset brings the queue back", "[virtio]")
{
	TempImage image;
	Driver driver(options_for(image));
	driver.rings.set_descriptor(0, kHeaders, 16, kDescNext, 1);
	driver.rings.set_descriptor(1, kHeaders, 16, kDescNext, 0);  // a loop
	driver.rings.make_available(0);
	driver.device->notify(0);
	const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
	while (driver.interrupt.resets_needed == 0 && std::chrono::steady_clock::now() < deadline)
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	CHECK(driver.interrupt.resets_needed == 1);
	CHECK(driver.device->stats().errors == 1);
	CHECK(driver.rings.used_idx() == 0);

	// The driver resets and sets the queue up again (fresh rings).
	driver.device->reset();
	std::memset(driver.ram.at(kRings), 0, 0x1000);
	REQUIRE(driver.device->activate(driver.features, {driver.rings.config()}, driver.interrupt).ok());
	CHECK(driver.request(kTypeIn, 0, 512, true) == kOk);
}

TEST_CASE("virtio-blk: a second activate without a reset takes the new queue", "[virtio]")
{
	TempImage image;
	Driver driver(options_for(image));
	CHECK(driver.request(kTypeIn, 0, 512, true) == kOk);
	std::memset(driver.ram.at(kRings), 0, 0x1000);
	REQUIRE(driver.device->activate(driver.features, {driver.rings.config()}, driver.interrupt).ok());
	CHECK(driver.request(kTypeIn, 1, 512, true) == kOk);
	CHECK(driver.ram.at(Driver::data_gpa(0))[0] == pattern(512));
}

TEST_CASE("virtio-blk refuses a queue outside guest RAM at activation", "[virtio]")
{
	TempImage image;
	FakeGuestRam ram(1 << 20);
	auto device = open_block(ram, options_for(image));
	REQUIRE(device.ok());
	DriverRings rings(ram, (1 << 20) - 0x100, 16);
	RecordingInterrupt interrupt;
	auto activated = (*device)->activate(kFeatureVersion1, {rings.config()}, interrupt);
	REQUIRE_FALSE(activated.ok());
	CHECK_THAT(activated.error().message, Catch::Contains("virtio-blk rootfs"));
	CHECK_FALSE((*device)->activate(kFeatureVersion1, {}, interrupt).ok());
}

TEST_CASE("virtio-blk start runs the confinement first and reports its failure", "[virtio]")
{
	TempImage image;
	FakeGuestRam ram(1 << 20);
	auto device = open_block(ram, options_for(image));
	REQUIRE(device.ok());
	std::thread::id confined_on;
	auto started = (*device)->start([&confined_on]() -> Status {
		confined_on = std::this_thread::get_id();
		return kairos::make_error("seccomp says no");
	});
	REQUIRE_FALSE(started.ok());
	CHECK(started.error().message == "seccomp says no");
	CHECK(confined_on != std::this_thread::get_id());
	(*device)->stop();
	(*device)->reset();

	// A later start without the failing confinement serves the queue.
	REQUIRE((*device)->start({}).ok());
	(*device)->stop();
	(*device)->stop();
}

TEST_CASE("virtio-blk open_block checks and locks the image", "[virtio]")
{
	TempImage image;
	FakeGuestRam ram(1 << 20);
	auto first = open_block(ram, options_for(image));
	REQUIRE(first.ok());

	SECTION("a second read-write open fails with the lock error")
	{
		auto second = open_block(ram, options_for(image));
		REQUIRE_FALSE(second.ok());
		CHECK(second.error().message == "drive 'rootfs': " + image.path() + " is locked by another process");
	}
	SECTION("read-only drives share the image, but not with a writer")
	{
		first.value().reset();
		auto reader = open_block(ram, options_for(image, true));
		REQUIRE(reader.ok());
		auto other = open_block(ram, options_for(image, true));
		CHECK(other.ok());
		auto writer = open_block(ram, options_for(image));
		CHECK_FALSE(writer.ok());
	}
	SECTION("missing, a directory, a size not a multiple of 512")
	{
		BlockOptions options = options_for(image);
		options.path = image.dir() + "/missing.img";
		auto missing = open_block(ram, options);
		REQUIRE_FALSE(missing.ok());
		CHECK_THAT(missing.error().message, Catch::StartsWith("drive 'rootfs': " + options.path));
		CHECK_THAT(missing.error().message, Catch::Contains("No such file"));

		options.path = image.dir();
		options.read_only = true;
		auto directory = open_block(ram, options);
		REQUIRE_FALSE(directory.ok());
		CHECK_THAT(directory.error().message, Catch::Contains("not a regular file or block device"));

		options.path = image.dir() + "/odd.img";
		int fd = open(options.path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		REQUIRE(fd >= 0);
		REQUIRE(write(fd, "x", 1) == 1);
		close(fd);
		auto odd = open_block(ram, options);
		unlink(options.path.c_str());
		REQUIRE_FALSE(odd.ok());
		CHECK_THAT(odd.error().message, Catch::Contains("not a multiple of 512"));
	}
	SECTION("cache none opens with O_DIRECT, or says the filesystem refuses it")
	{
		first.value().reset();
		BlockOptions options = options_for(image);
		options.cache = BlockOptions::Cache::None;
		auto direct = open_block(ram, options);
		if (!direct.ok())
			CHECK_THAT(direct.error().message, Catch::Contains("O_DIRECT"));
	}
}
