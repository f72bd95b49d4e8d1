// vCPU exit dispatch with synthetic kvm_run structures, no VM (as
// Firecracker tests handle_kvm_exit): each exit reason KVM can hand the run
// loop, and what it must do with it.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "devices/bus.h"
#include "vmm/vcpu_exit.h"

using kairos::devices::Bus;
using kairos::devices::BusDevice;
using kairos::vmm::CodeBytes;
using kairos::vmm::describe_vcpu_state;
using kairos::vmm::handle_vcpu_exit;
using kairos::vmm::stop_wants_vcpu_state;
using kairos::vmm::StopReason;

namespace {

struct Access {
	uint64_t offset;
	std::vector<uint8_t> data;
};

// Records writes; a read of n bytes at offset answers offset + 1, offset + 2, ...
class Recorder : public BusDevice {
public:
	std::string name() const override { return "recorder"; }
	void read(uint64_t offset, std::span<uint8_t> data) override
	{
		reads.push_back({offset, {}});
		for (size_t i = 0; i < data.size(); ++i)
			data[i] = static_cast<uint8_t>(offset + 1 + i + 0x10 * (reads.size() - 1));
	}
	void write(uint64_t offset, std::span<const uint8_t> data) override
	{
		writes.push_back({offset, {data.begin(), data.end()}});
	}
	std::vector<Access> reads;
	std::vector<Access> writes;
};

// kvm_run as KVM maps it: the structure, then the page where string I/O
// data sits (io.data_offset counts from the start of kvm_run).
struct RunPage {
	kvm_run run;
	uint8_t io_data[256];
};

constexpr uint16_t kPort = 0x3f8;
constexpr uint64_t kMmioAddress = 0xd0000000;

struct Fixture {
	Fixture()
	{
		REQUIRE(pio.add(kPort, 8, port_device).ok());
		REQUIRE(mmio.add(kMmioAddress, 0x1000, mmio_device).ok());
	}

	std::optional<kairos::vmm::VcpuStop> dispatch(uint32_t vcpu = 0)
	{
		return handle_vcpu_exit(page->run, vcpu, pio, mmio);
	}

	void port_exit(uint8_t direction, uint16_t port, uint8_t size, uint32_t count)
	{
		page->run.exit_reason = KVM_EXIT_IO;
		page->run.io.direction = direction;
		page->run.io.port = port;
		page->run.io.size = size;
		page->run.io.count = count;
		page->run.io.data_offset = offsetof(RunPage, io_data);
	}

	void mmio_exit(bool is_write, uint64_t address, uint32_t length)
	{
		page->run.exit_reason = KVM_EXIT_MMIO;
		page->run.mmio.is_write = is_write;
		page->run.mmio.phys_addr = address;
		page->run.mmio.len = length;
	}

	std::unique_ptr<RunPage> page = std::make_unique<RunPage>();
	Bus pio;
	Bus mmio;
	std::shared_ptr<Recorder> port_device = std::make_shared<Recorder>();
	std::shared_ptr<Recorder> mmio_device = std::make_shared<Recorder>();
};

// The stop must carry the reason the process exits with and a detail
// that says which vCPU and what happened.
void check_stop(const std::optional<kairos::vmm::VcpuStop> &stop, StopReason reason, const std::string &detail)
{
	REQUIRE(stop.has_value());
	CHECK(stop->reason == reason);
	CHECK(stop->detail == detail);
}

}  // namespace

TEST_CASE("vCPU exit: a port write reaches the device at its offset", "[vcpu_exit]")
{
	Fixture f;
	f.port_exit(KVM_EXIT_IO_OUT, kPort + 5, 1, 1);
	f.page->io_data[0] = 0x41;
	CHECK_FALSE(f.dispatch().has_value());
	REQUIRE(f.port_device->writes.size() == 1);
	CHECK(f.port_device->writes[0].offset == 5);
	CHECK(f.port_device->writes[0].data == std::vector<uint8_t>{0x41});
	CHECK(f.port_device->reads.empty());
	CHECK(f.mmio_device->writes.empty());
}

TEST_CASE("vCPU exit: string output (rep outs) is count writes of size bytes, in order", "[vcpu_exit]")
{
	Fixture f;
	f.port_exit(KVM_EXIT_IO_OUT, kPort, 2, 3);
	const uint8_t data[] = {1, 2, 3, 4, 5, 6};
	std::memcpy(f.page->io_data, data, sizeof(data));
	CHECK_FALSE(f.dispatch().has_value());
	REQUIRE(f.port_device->writes.size() == 3);
	CHECK(f.port_device->writes[0].data == std::vector<uint8_t>{1, 2});
	CHECK(f.port_device->writes[1].data == std::vector<uint8_t>{3, 4});
	CHECK(f.port_device->writes[2].data == std::vector<uint8_t>{5, 6});
	for (const auto &write : f.port_device->writes)
		CHECK(write.offset == 0);
}

TEST_CASE("vCPU exit: string input (rep ins) fills count chunks of the data page", "[vcpu_exit]")
{
	Fixture f;
	f.port_exit(KVM_EXIT_IO_IN, kPort + 2, 4, 2);
	std::memset(f.page->io_data, 0xee, sizeof(f.page->io_data));
	CHECK_FALSE(f.dispatch().has_value());
	REQUIRE(f.port_device->reads.size() == 2);
	CHECK(f.port_device->reads[0].offset == 2);
	// First read 3, 4, 5, 6; the second 0x13, 0x14, ...; nothing past 8 bytes.
	CHECK(std::vector<uint8_t>(f.page->io_data, f.page->io_data + 9) ==
	      std::vector<uint8_t>{3, 4, 5, 6, 0x13, 0x14, 0x15, 0x16, 0xee});
	CHECK(f.port_device->writes.empty());
}

TEST_CASE("vCPU exit: a read of an unclaimed port floats high", "[vcpu_exit]")
{
	Fixture f;
	f.port_exit(KVM_EXIT_IO_IN, 0x80, 1, 1);
	f.page->io_data[0] = 0;
	CHECK_FALSE(f.dispatch().has_value());
	CHECK(f.page->io_data[0] == 0xff);
	CHECK(f.pio.unclaimed_accesses() == 1);
}

TEST_CASE("vCPU exit: MMIO writes and reads go to the MMIO bus, at most 8 bytes", "[vcpu_exit]")
{
	Fixture f;
	f.mmio_exit(true, kMmioAddress + 0x10, 4);
	const uint8_t value[] = {0xde, 0xad, 0xbe, 0xef};
	std::memcpy(f.page->run.mmio.data, value, sizeof(value));
	CHECK_FALSE(f.dispatch().has_value());
	REQUIRE(f.mmio_device->writes.size() == 1);
	CHECK(f.mmio_device->writes[0].offset == 0x10);
	CHECK(f.mmio_device->writes[0].data == std::vector<uint8_t>{0xde, 0xad, 0xbe, 0xef});
	CHECK(f.port_device->writes.empty());

	f.mmio_exit(false, kMmioAddress + 0x20, 2);
	std::memset(f.page->run.mmio.data, 0, sizeof(f.page->run.mmio.data));
	CHECK_FALSE(f.dispatch().has_value());
	REQUIRE(f.mmio_device->reads.size() == 1);
	CHECK(f.mmio_device->reads[0].offset == 0x20);
	CHECK(f.page->run.mmio.data[0] == 0x21);
	CHECK(f.page->run.mmio.data[1] == 0x22);
	CHECK(f.page->run.mmio.data[2] == 0);

	// A length beyond mmio.data is clamped, not trusted.
	f.mmio_exit(true, kMmioAddress, 64);
	CHECK_FALSE(f.dispatch().has_value());
	REQUIRE(f.mmio_device->writes.size() == 2);
	CHECK(f.mmio_device->writes[1].data.size() == sizeof(f.page->run.mmio.data));
}

TEST_CASE("vCPU exit: an interrupted KVM_RUN (a kick) runs on", "[vcpu_exit]")
{
	Fixture f;
	f.page->run.exit_reason = KVM_EXIT_INTR;
	CHECK_FALSE(f.dispatch().has_value());
	CHECK(f.port_device->writes.empty());
	CHECK(f.port_device->reads.empty());
}

TEST_CASE("vCPU exit: a triple fault stops the machine as one", "[vcpu_exit]")
{
	Fixture f;
	f.page->run.exit_reason = KVM_EXIT_SHUTDOWN;
	check_stop(f.dispatch(3), StopReason::TripleFault, "vCPU 3 triple-faulted");
}

TEST_CASE("vCPU exit: each system event stops with its own reason", "[vcpu_exit]")
{
	Fixture f;
	f.page->run.exit_reason = KVM_EXIT_SYSTEM_EVENT;
	f.page->run.system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
	check_stop(f.dispatch(), StopReason::PowerOff, "system event: shutdown");
	f.page->run.system_event.type = KVM_SYSTEM_EVENT_RESET;
	check_stop(f.dispatch(), StopReason::Reset, "system event: reset");
	f.page->run.system_event.type = KVM_SYSTEM_EVENT_CRASH;
	check_stop(f.dispatch(), StopReason::GuestPanic, "system event 3");
}

TEST_CASE("vCPU exit: HLT, a failed entry and an internal error are guest errors that say which", "[vcpu_exit]")
{
	Fixture f;
	f.page->run.exit_reason = KVM_EXIT_HLT;
	check_stop(f.dispatch(1), StopReason::GuestError, "vCPU 1 halted");

	f.page->run.exit_reason = KVM_EXIT_FAIL_ENTRY;
	f.page->run.fail_entry.hardware_entry_failure_reason = 0x80000021;
	check_stop(f.dispatch(2), StopReason::GuestError, "vCPU 2: VM entry failed, hardware reason 0x80000021");

	f.page->run.exit_reason = KVM_EXIT_INTERNAL_ERROR;
	f.page->run.internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	check_stop(f.dispatch(0), StopReason::GuestError, "vCPU 0: KVM internal error, suberror 1");
}

TEST_CASE("vCPU exit: an exit reason Kairos does not handle stops with its number", "[vcpu_exit]")
{
	Fixture f;
	f.page->run.exit_reason = KVM_EXIT_DEBUG;
	check_stop(f.dispatch(0), StopReason::GuestError, "vCPU 0: unexpected exit reason 4");
	CHECK(f.port_device->writes.empty());
	CHECK(f.mmio_device->writes.empty());
}

TEST_CASE("vcpu exit: a guest that cannot run gets its registers and code printed, as QEMU does", "[vcpu_exit]")
{
	CHECK(stop_wants_vcpu_state(StopReason::GuestError));
	CHECK(stop_wants_vcpu_state(StopReason::TripleFault));
	CHECK_FALSE(stop_wants_vcpu_state(StopReason::PowerOff));
	CHECK_FALSE(stop_wants_vcpu_state(StopReason::GuestPanic));

	kvm_regs regs{};
	regs.rax = 0x1234;
	regs.r8 = 0x8;
	regs.rip = 0xffffffff81000010ULL;
	regs.rflags = 0x246;
	kvm_sregs sregs{};
	sregs.cs.selector = 0x10;
	sregs.cs.l = 1;
	sregs.cs.present = 1;
	sregs.cr0 = 0x80050033;
	sregs.cr3 = 0x1000;
	sregs.efer = 0xd01;
	CodeBytes code{{0x90, 0x0f, 0x0b, 0xf4}, 2};
	std::string text = describe_vcpu_state(3, regs, sregs, code);
	CHECK_THAT(text, Catch::StartsWith("vCPU 3 state:\n"));
	CHECK_THAT(text, Catch::Contains("RAX=0000000000001234 RBX=0000000000000000"));
	CHECK_THAT(text, Catch::Contains("R8 =0000000000000008"));
	CHECK_THAT(text, Catch::Contains("RIP=ffffffff81000010 RFL=00000246 CPL=0\n"));
	CHECK_THAT(text, Catch::Contains("CS =0010 0000000000000000 00000000 type 0 dpl 0 P L\n"));
	CHECK_THAT(text, Catch::Contains("CR0=80050033 CR2=0000000000000000 CR3=0000000000001000"));
	CHECK_THAT(text, Catch::Contains("EFER=0000000000000d01\n"));
	CHECK_THAT(text, Catch::EndsWith("Code=90 0f <0b> f4\n"));
	CHECK_THAT(describe_vcpu_state(0, regs, sregs, std::nullopt), Catch::EndsWith("Code=(not readable)\n"));
	CHECK_THAT(text, !Catch::Contains("reset state"));
	kvm_regs reset{};
	reset.rip = 0xfff0;
	kvm_sregs reset_segments{};
	reset_segments.cs.selector = 0xf000;
	CHECK_THAT(describe_vcpu_state(0, reset, reset_segments, std::nullopt),
		   Catch::Contains("(the reset state: KVM reinitialises a vCPU after a triple fault on AMD"));
}
