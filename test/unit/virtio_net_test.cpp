#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/if_tun.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "base/unique_fd.h"
#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/net.h"
#include "devices/virtio/net_device.h"
#include "test/unit/fake_guest_ram.h"

using kairos::UniqueFd;
using kairos::devices::virtio::FrameEndpoint;
using kairos::devices::virtio::Interrupt;
using kairos::devices::virtio::kFeatureEventIdx;
using kairos::devices::virtio::kFeatureIndirectDesc;
using kairos::devices::virtio::kFeatureVersion1;
using kairos::devices::virtio::kNetCsum;
using kairos::devices::virtio::kNetGuestCsum;
using kairos::devices::virtio::kNetGuestTso4;
using kairos::devices::virtio::kNetGuestTso6;
using kairos::devices::virtio::kNetHostTso4;
using kairos::devices::virtio::kNetHostTso6;
using kairos::devices::virtio::kNetMac;
using kairos::devices::virtio::kNetMrgRxbuf;
using kairos::devices::virtio::kNetStatus;
using kairos::devices::virtio::make_net_device;
using kairos::devices::virtio::MmioTransport;
using kairos::devices::virtio::NetHeader;
using kairos::devices::virtio::NetOptions;
using kairos::devices::virtio::open_net;
using kairos::devices::virtio::VirtioDevice;
using kairos::test::DriverRings;
using kairos::test::FakeGuestRam;
using kairos::test::kDescNext;
using kairos::test::kDescWrite;

namespace {

constexpr uint16_t kQueueSize = 32;
constexpr uint64_t kReceiveRings = 0x1000;
constexpr uint64_t kTransmitRings = 0x2000;
constexpr uint64_t kBuffers = 0x100000;  // 0x10000 per descriptor
constexpr std::array<uint8_t, 6> kMac = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
constexpr size_t kHeader = sizeof(NetHeader);

class RecordingInterrupt : public Interrupt {
public:
	void used_buffers() override { ++used; }
	void needs_reset() override { ++resets_needed; }
	std::atomic<int> used{0};
	std::atomic<int> resets_needed{0};
};

uint8_t pattern(size_t byte, uint8_t seed)
{
	return static_cast<uint8_t>(byte * 13 + seed);
}

// A frame as it crosses the TAP: a header, then `length` bytes of pattern.
std::vector<uint8_t> make_frame(size_t length, uint8_t seed, uint8_t flags = 0)
{
	std::vector<uint8_t> frame(kHeader + length);
	frame[0] = flags;
	for (size_t i = 0; i < length; ++i)
		frame[kHeader + i] = pattern(i, seed);
	return frame;
}

// A guest driver of one virtio-net device whose frames go to a
// SOCK_SEQPACKET socketpair: `host` is the other end, where the test reads
// what the guest sent and writes what it receives.
class Driver {
public:
	explicit Driver(uint64_t features = kFeatureVersion1 | kFeatureEventIdx | kFeatureIndirectDesc)
		: receive(ram, kReceiveRings, kQueueSize, features & kFeatureEventIdx, true),
		  transmit(ram, kTransmitRings, kQueueSize, features & kFeatureEventIdx, true), acked(features)
	{
		int pair[2];
		REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == 0);
		host = UniqueFd(pair[1]);
		REQUIRE(fcntl(pair[0], F_SETFL, O_NONBLOCK) == 0);
		auto made = make_net_device(ram, "net0", kMac, UniqueFd(pair[0]), FrameEndpoint::Packets);
		REQUIRE(made.ok());
		device = std::move(made).value();
		REQUIRE(device->start({}).ok());
	}
	~Driver() { device->stop(); }

	void activate() { REQUIRE(device->activate(acked, {receive.config(), transmit.config()}, interrupt).ok()); }

	static uint64_t buffer_gpa(uint16_t descriptor) { return kBuffers + 0x10000 * uint64_t{descriptor}; }

	// Posts a transmit chain: the frame split after `split` bytes over
	// two descriptors (or one when split is 0) from descriptor `head`.
	void post_transmit(uint16_t head, const std::vector<uint8_t> &frame, size_t split = kHeader)
	{
		if (split == 0 || split >= frame.size()) {
			std::memcpy(ram.at(buffer_gpa(head)), frame.data(), frame.size());
			transmit.set_descriptor(head, buffer_gpa(head), static_cast<uint32_t>(frame.size()), 0);
		} else {
			const uint16_t next = static_cast<uint16_t>(head + 1);
			std::memcpy(ram.at(buffer_gpa(head)), frame.data(), split);
			std::memcpy(ram.at(buffer_gpa(next)), frame.data() + split, frame.size() - split);
			transmit.set_descriptor(head, buffer_gpa(head), static_cast<uint32_t>(split), kDescNext, next);
			transmit.set_descriptor(next, buffer_gpa(next), static_cast<uint32_t>(frame.size() - split), 0);
		}
		transmit.make_available(head);
		device->notify(1);
	}

	// Posts one device-writable receive buffer of `length` bytes.
	void post_receive(uint16_t descriptor, uint32_t length)
	{
		std::memset(ram.at(buffer_gpa(descriptor)), 0xee, length);
		receive.set_descriptor(descriptor, buffer_gpa(descriptor), length, kDescWrite);
		receive.make_available(descriptor);
		device->notify(0);
	}

	void send_from_host(const std::vector<uint8_t> &frame)
	{
		REQUIRE(write(host.get(), frame.data(), frame.size()) == static_cast<ssize_t>(frame.size()));
	}

	// The next frame the guest sent, or an empty vector after 2 s.
	std::vector<uint8_t> receive_on_host(int timeout_ms = 2000)
	{
		std::vector<uint8_t> frame(70000);
		const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
		while (std::chrono::steady_clock::now() < deadline) {
			const ssize_t got = recv(host.get(), frame.data(), frame.size(), MSG_DONTWAIT);
			if (got >= 0) {
				frame.resize(static_cast<size_t>(got));
				return frame;
			}
			std::this_thread::sleep_for(std::chrono::microseconds(200));
		}
		return {};
	}

	static bool wait_for(const std::function<bool()> &done, int timeout_ms = 10000)
	{
		const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
		while (!done()) {
			if (std::chrono::steady_clock::now() > deadline)
				return false;
			std::this_thread::sleep_for(std::chrono::microseconds(200));
		}
		return true;
	}

	std::vector<uint8_t> guest_bytes(uint16_t descriptor, size_t length)
	{
		const uint8_t *at = ram.at(buffer_gpa(descriptor));
		return {at, at + length};
	}

	FakeGuestRam ram{8 << 20};
	DriverRings receive;
	DriverRings transmit;
	uint64_t acked;
	RecordingInterrupt interrupt;
	UniqueFd host;
	std::shared_ptr<VirtioDevice> device;
};

uint16_t num_buffers(const std::vector<uint8_t> &header)
{
	return static_cast<uint16_t>(header[10] | header[11] << 8);
}

}  // namespace

TEST_CASE("virtio-net offers its features and config space", "[virtio]")
{
	Driver driver;
	VirtioDevice &net = *driver.device;
	CHECK(net.device_type() == 1);
	CHECK(net.name() == "virtio-net net0");
	CHECK(net.queue_count() == 2);
	CHECK(net.queue_max_size() == 256);
	CHECK(net.features() ==
	      (kFeatureVersion1 | kFeatureEventIdx | kFeatureIndirectDesc | kNetMac | kNetStatus | kNetMrgRxbuf |
	       kNetCsum | kNetGuestCsum | kNetGuestTso4 | kNetGuestTso6 | kNetHostTso4 | kNetHostTso6));
	std::array<uint8_t, 10> config = {};
	net.read_config(0, config);
	CHECK(std::equal(kMac.begin(), kMac.end(), config.begin()));
	CHECK(config[6] == 1);  // status: VIRTIO_NET_S_LINK_UP
	CHECK(config[7] == 0);
	CHECK(config[8] == 0);  // past the config: zero
	std::array<uint8_t, 2> status = {};
	net.read_config(6, status);
	CHECK(status[0] == 1);
	// Writes are ignored: the mac stays.
	const std::array<uint8_t, 6> other = {1, 2, 3, 4, 5, 6};
	net.write_config(0, other);
	net.read_config(0, config);
	CHECK(std::equal(kMac.begin(), kMac.end(), config.begin()));
}

TEST_CASE("virtio-net negotiates through the virtio-mmio transport", "[virtio]")
{
	Driver driver;
	std::atomic<int> raised{0};
	MmioTransport transport(driver.device, [&] { ++raised; });
	auto write_register = [&](uint64_t offset, uint32_t value) {
		transport.write(offset, {reinterpret_cast<const uint8_t *>(&value), 4});
	};
	auto read_register = [&](uint64_t offset) {
		uint32_t value = 0;
		transport.read(offset, {reinterpret_cast<uint8_t *>(&value), 4});
		return value;
	};
	CHECK(read_register(0x08) == 1);  // DeviceID: network card
	write_register(0x70, 1);
	write_register(0x70, 1 | 2);
	write_register(0x14, 0);
	const uint32_t low = read_register(0x10);
	CHECK((low & kNetMrgRxbuf));
	CHECK((low & kNetMac));
	// The driver takes a subset: no TSO, mergeable buffers.
	const uint64_t acked = kFeatureVersion1 | kFeatureEventIdx | kNetMac | kNetMrgRxbuf | kNetStatus;
	write_register(0x24, 0);
	write_register(0x20, static_cast<uint32_t>(acked));
	write_register(0x24, 1);
	write_register(0x20, static_cast<uint32_t>(acked >> 32));
	write_register(0x70, 1 | 2 | 8);
	REQUIRE(read_register(0x70) == (1 | 2 | 8));
	// The mac at config offset 0x100.
	uint8_t mac[6] = {};
	transport.read(0x100, {mac, 6});
	CHECK(std::equal(kMac.begin(), kMac.end(), mac));
	for (uint16_t queue = 0; queue < 2; ++queue) {
		const DriverRings &rings = queue == 0 ? driver.receive : driver.transmit;
		write_register(0x30, queue);
		CHECK(read_register(0x34) == 256);
		write_register(0x38, kQueueSize);
		write_register(0x80, static_cast<uint32_t>(rings.config().desc_gpa));
		write_register(0x90, static_cast<uint32_t>(rings.config().avail_gpa));
		write_register(0xa0, static_cast<uint32_t>(rings.config().used_gpa));
		write_register(0x44, 1);
	}
	write_register(0x70, 1 | 2 | 8 | 4);
	REQUIRE(read_register(0x70) == (1 | 2 | 8 | 4));
	// Served: a frame goes out through the transport's notify.
	const auto frame = make_frame(100, 1);
	std::memcpy(driver.ram.at(Driver::buffer_gpa(0)), frame.data(), frame.size());
	driver.transmit.set_descriptor(0, Driver::buffer_gpa(0), static_cast<uint32_t>(frame.size()), 0);
	driver.transmit.make_available(0);
	write_register(0x50, 1);
	CHECK(driver.receive_on_host() == frame);
	CHECK(Driver::wait_for([&] { return raised.load() > 0; }));
	write_register(0x70, 0);  // reset
	CHECK(read_register(0x70) == 0);
}

TEST_CASE("virtio-net transmits frames with their headers", "[virtio]")
{
	Driver driver;
	driver.activate();
	// Header and frame in separate descriptors, as Linux sends them...
	const auto first = make_frame(1500, 3, 1 /* NEEDS_CSUM */);
	driver.post_transmit(0, first);
	CHECK(driver.receive_on_host() == first);
	// ...or in one, or split inside the header (section 2.6.4).
	const auto second = make_frame(60, 4);
	driver.post_transmit(2, second, 0);
	CHECK(driver.receive_on_host() == second);
	const auto third = make_frame(9000, 5);
	driver.post_transmit(4, third, 5);
	CHECK(driver.receive_on_host() == third);
	REQUIRE(Driver::wait_for([&] { return driver.transmit.used_idx() == 3; }));
	CHECK(driver.transmit.used_len(0) == 0);
	CHECK(driver.transmit.used_id(1) == 2);
	const auto stats = driver.device->stats();
	CHECK(stats.requests == 3);
	CHECK(stats.bytes_written == 1500 + 60 + 9000);
	CHECK(stats.errors == 0);
	CHECK(stats.notifications >= 1);
	CHECK(driver.interrupt.resets_needed == 0);
}

TEST_CASE("virtio-net holds a frame the endpoint cannot take, and sends it when it can", "[virtio]")
{
	Driver driver;
	// A send buffer of a few frames, and a host that does not read yet:
	// writev meets EAGAIN, the chain waits, and the device's thread must
	// wake on the endpoint's POLLOUT, not on a guest notification.
	const int small = 4096;
	REQUIRE(setsockopt(driver.host.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) == 0);
	driver.activate();
	constexpr uint16_t kFrames = 24;
	std::vector<std::vector<uint8_t>> sent;
	for (uint16_t i = 0; i < kFrames; ++i) {
		sent.push_back(make_frame(9000, static_cast<uint8_t>(i)));
		driver.post_transmit(i, sent.back(), 0);
	}
	std::this_thread::sleep_for(std::chrono::milliseconds(50));
	CHECK(driver.transmit.used_idx() < kFrames);  // some wait for room
	for (uint16_t i = 0; i < kFrames; ++i)
		REQUIRE(driver.receive_on_host() == sent[i]);  // all, in order
	REQUIRE(Driver::wait_for([&] { return driver.transmit.used_idx() == kFrames; }));
	CHECK(driver.device->stats().requests == kFrames);
	CHECK(driver.device->stats().errors == 0);
}

TEST_CASE("virtio-net receives a frame into one buffer without MRG_RXBUF", "[virtio]")
{
	Driver driver;
	driver.activate();
	driver.post_receive(0, 1526);
	const auto frame = make_frame(1500, 7, 2 /* DATA_VALID */);
	driver.send_from_host(frame);
	REQUIRE(Driver::wait_for([&] { return driver.receive.used_idx() == 1; }));
	CHECK(driver.receive.used_id(0) == 0);
	CHECK(driver.receive.used_len(0) == frame.size());
	auto got = driver.guest_bytes(0, frame.size());
	CHECK(num_buffers(got) == 1);
	got[10] = got[11] = 0;  // the host's header had num_buffers 0
	CHECK(got == frame);
	CHECK(Driver::wait_for([&] { return driver.interrupt.used.load() > 0; }));
	const auto stats = driver.device->stats();
	CHECK(stats.requests == 1);
	CHECK(stats.bytes_read == 1500);

	SECTION("a frame larger than the buffer is dropped, the buffer kept")
	{
		driver.send_from_host(make_frame(3000, 8));
		driver.post_receive(1, 1526);
		const auto small = make_frame(64, 9);
		driver.send_from_host(small);
		REQUIRE(Driver::wait_for([&] { return driver.receive.used_idx() == 2; }));
		CHECK(driver.receive.used_id(1) == 1);
		CHECK(driver.receive.used_len(1) == small.size());
		CHECK(driver.device->stats().errors == 1);
	}
}

TEST_CASE("virtio-net spreads a frame over buffers with MRG_RXBUF", "[virtio]")
{
	Driver driver(kFeatureVersion1 | kFeatureEventIdx | kFeatureIndirectDesc | kNetMrgRxbuf);
	driver.activate();
	for (uint16_t i = 0; i < 4; ++i)
		driver.post_receive(i, 256);
	const auto frame = make_frame(600 - kHeader, 11);  // 600 bytes: 256 + 256 + 88
	driver.send_from_host(frame);
	REQUIRE(Driver::wait_for([&] { return driver.receive.used_idx() == 3; }));
	CHECK(driver.receive.used_len(0) == 256);
	CHECK(driver.receive.used_len(1) == 256);
	CHECK(driver.receive.used_len(2) == 88);
	std::vector<uint8_t> got;
	for (uint16_t i = 0; i < 3; ++i) {
		const auto part = driver.guest_bytes(static_cast<uint16_t>(driver.receive.used_id(i)),
						     driver.receive.used_len(i));
		got.insert(got.end(), part.begin(), part.end());
	}
	CHECK(num_buffers(got) == 3);
	got[10] = got[11] = 0;
	CHECK(got == frame);
	// The fourth buffer is held for the next frame.
	const auto next = make_frame(20, 12);
	driver.send_from_host(next);
	REQUIRE(Driver::wait_for([&] { return driver.receive.used_idx() == 4; }));
	CHECK(driver.receive.used_id(3) == 3);
	CHECK(num_buffers(driver.guest_bytes(3, kHeader)) == 1);
}

TEST_CASE("virtio-net leaves a frame waiting while the receive queue has no buffers", "[virtio]")
{
	Driver driver(kFeatureVersion1 | kFeatureEventIdx | kNetMrgRxbuf);
	driver.activate();
	const auto frame = make_frame(600 - kHeader, 21);
	driver.send_from_host(frame);
	std::this_thread::sleep_for(std::chrono::milliseconds(50));
	CHECK(driver.receive.used_idx() == 0);
	// One buffer is not enough for 600 bytes: the frame waits for more.
	driver.post_receive(0, 256);
	std::this_thread::sleep_for(std::chrono::milliseconds(50));
	CHECK(driver.receive.used_idx() == 0);
	driver.post_receive(1, 256);
	driver.post_receive(2, 256);
	REQUIRE(Driver::wait_for([&] { return driver.receive.used_idx() == 3; }));
	CHECK(driver.device->stats().errors == 0);
	CHECK(driver.device->stats().bytes_read == frame.size() - kHeader);
	// None was lost or reordered meanwhile.
	const auto second = make_frame(40, 22);
	driver.send_from_host(second);
	driver.send_from_host(make_frame(41, 23));
	std::this_thread::sleep_for(std::chrono::milliseconds(20));
	driver.post_receive(3, 256);
	REQUIRE(Driver::wait_for([&] { return driver.receive.used_idx() == 4; }));
	CHECK(driver.receive.used_len(3) == second.size());
	driver.post_receive(4, 256);
	REQUIRE(Driver::wait_for([&] { return driver.receive.used_idx() == 5; }));
	CHECK(driver.receive.used_len(4) == kHeader + 41);
}

TEST_CASE("virtio-net fails malformed requests and breaks on a broken ring", "[virtio]")
{
	Driver driver;
	driver.activate();

	SECTION("a transmit chain with no frame after the header")
	{
		driver.post_transmit(0, std::vector<uint8_t>(kHeader), 0);
		REQUIRE(Driver::wait_for([&] { return driver.transmit.used_idx() == 1; }));
		CHECK(driver.receive_on_host(100).empty());
		CHECK(driver.device->stats().errors == 1);
		CHECK(driver.interrupt.resets_needed == 0);
	}
	SECTION("a transmit chain with a device-writable buffer")
	{
		driver.transmit.set_descriptor(0, Driver::buffer_gpa(0), 100, kDescNext, 1);
		driver.transmit.set_descriptor(1, Driver::buffer_gpa(1), 100, kDescWrite);
		driver.transmit.make_available(0);
		driver.device->notify(1);
		REQUIRE(Driver::wait_for([&] { return driver.transmit.used_idx() == 1; }));
		CHECK(driver.receive_on_host(100).empty());
		CHECK(driver.device->stats().errors == 1);
		// The next good frame still goes.
		const auto frame = make_frame(100, 31);
		driver.post_transmit(2, frame);
		CHECK(driver.receive_on_host() == frame);
	}
	SECTION("a receive buffer smaller than the header")
	{
		driver.post_receive(0, 8);
		driver.post_receive(1, 1526);
		driver.send_from_host(make_frame(100, 32));
		REQUIRE(Driver::wait_for([&] { return driver.receive.used_idx() == 2; }));
		CHECK(driver.receive.used_id(0) == 0);
		CHECK(driver.receive.used_len(0) == 0);
		CHECK(driver.receive.used_id(1) == 1);
		CHECK(driver.receive.used_len(1) == kHeader + 100);
		CHECK(driver.device->stats().errors == 1);
	}
	SECTION("a descriptor loop: DEVICE_NEEDS_RESET, the queues no longer served")
	{
		driver.transmit.set_descriptor(0, Driver::buffer_gpa(0), 100, kDescNext, 0);
		driver.transmit.make_available(0);
		driver.device->notify(1);
		REQUIRE(Driver::wait_for([&] { return driver.interrupt.resets_needed.load() == 1; }));
		CHECK(driver.transmit.used_idx() == 0);
		driver.post_receive(1, 1526);
		driver.send_from_host(make_frame(100, 33));
		std::this_thread::sleep_for(std::chrono::milliseconds(50));
		CHECK(driver.receive.used_idx() == 0);
		// A reset and a new activation serve again.
		driver.device->reset();
		DriverRings fresh_receive(driver.ram, 0x3000, kQueueSize, true, true);
		DriverRings fresh_transmit(driver.ram, 0x4000, kQueueSize, true, true);
		REQUIRE(driver.device
				->activate(driver.acked, {fresh_receive.config(), fresh_transmit.config()},
					   driver.interrupt)
				.ok());
		fresh_receive.set_descriptor(0, Driver::buffer_gpa(0), 1526, kDescWrite);
		fresh_receive.make_available(0);
		driver.device->notify(0);
		REQUIRE(Driver::wait_for([&] { return fresh_receive.used_idx() == 1; }));
		CHECK(fresh_receive.used_len(0) == kHeader + 100);
	}
}

TEST_CASE("virtio-net refuses activation without both queues", "[virtio]")
{
	Driver driver;
	auto transmit = driver.transmit.config();
	transmit.size = 0;
	CHECK_FALSE(driver.device->activate(driver.acked, {driver.receive.config(), transmit}, driver.interrupt).ok());
	CHECK_FALSE(driver.device->activate(driver.acked, {driver.receive.config()}, driver.interrupt).ok());
}

TEST_CASE("virtio-net names the TAP and the cause when it cannot open it", "[virtio]")
{
	FakeGuestRam ram(1 << 20);
	NetOptions options;
	options.id = "net0";
	options.tap = "this-name-is-far-too-long-for-an-interface";
	auto opened = open_net(ram, options);
	REQUIRE_FALSE(opened.ok());
	CHECK(opened.error().message.rfind(options.tap + ": not an interface name", 0) == 0);

	options.tap = "kairos-nosuch9";
	opened = open_net(ram, options);
	if (opened.ok())
		return;  // root with CAP_NET_ADMIN: a fresh TAP was made, and goes with the device
	INFO(opened.error().message);
	CHECK(opened.error().message.rfind("kairos-nosuch9: ", 0) == 0);
	CHECK(opened.error().message.find('\n') == std::string::npos);
}

TEST_CASE("virtio-net: the TAP's offloads follow what the driver takes to receive", "[virtio][net]")
{
	using kairos::devices::virtio::tap_offloads;
	CHECK(tap_offloads(0) == 0);
	// TSO without the checksum offload it rests on: nothing (5.1.3.1).
	CHECK(tap_offloads(kNetGuestTso4 | kNetGuestTso6) == 0);
	CHECK(tap_offloads(kNetGuestCsum) == TUN_F_CSUM);
	CHECK(tap_offloads(kNetGuestCsum | kNetGuestTso4) == (TUN_F_CSUM | TUN_F_TSO4));
	CHECK(tap_offloads(kNetGuestCsum | kNetGuestTso4 | kNetGuestTso6) == (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6));
	// What the host sends (CSUM, HOST_TSO*) is not the TAP's to offload.
	CHECK(tap_offloads(kNetCsum) == 0);
}

TEST_CASE("virtio-net: a generated MAC is unicast, locally administered, and the same each boot", "[virtio][net]")
{
	using kairos::devices::virtio::generated_mac;
	using kairos::devices::virtio::NetOptions;
	const auto mac = generated_mac(NetOptions{"net0", "kairos0", std::nullopt});
	CHECK((mac[0] & 0x01) == 0);  // unicast
	CHECK((mac[0] & 0x02) != 0);  // locally administered
	CHECK(mac == generated_mac(NetOptions{"net0", "kairos0", std::nullopt}));
	// Another interface or TAP: another address.
	CHECK(mac != generated_mac(NetOptions{"net1", "kairos0", std::nullopt}));
	CHECK(mac != generated_mac(NetOptions{"net0", "kairos1", std::nullopt}));
}
