#include "vmm/machine.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "devices/i8042.h"
#include "devices/irq_line.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "vmm/base/error.h"
#include "vmm/boot.h"
#include "vmm/cpuid.h"
#include "vmm/layout.h"
#include "vmm/mptable.h"

namespace kairos::vmm {
namespace {

constexpr int kEventLoopTickMs = 20;
constexpr size_t kConsoleReadChunk = 256;

// An ISA interrupt line on the in-kernel IOAPIC/PIC pair.
class KvmIrqLine : public devices::IrqLine {
public:
	KvmIrqLine(const VmFd &vm, uint32_t gsi) : vm_(vm), gsi_(gsi) {}
	void set_level(bool high) override { (void)vm_.set_irq_line(gsi_, high); }

private:
	const VmFd &vm_;
	uint32_t gsi_;
};

// Port 0x80: Linux writes it to delay I/O. Claim it so it is not counted
// as an unclaimed access.
class PostCodePort : public devices::BusDevice {
public:
	std::string name() const override { return "POST code port"; }
	void read(uint64_t, std::span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0); }
	void write(uint64_t, std::span<const uint8_t>) override {}
};

Result<std::vector<uint8_t>> read_whole_file(const std::filesystem::path &path, const char *key)
{
	std::ifstream in(path, std::ios::binary);
	if (!in)
		return errno_error(fmt::format("{} {}", key, path.string()));
	return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

} // namespace

Machine::Machine(const Config &config, Kvm kvm, VmFd vm, GuestMemory memory, Shutdown shutdown)
	: config_(config), kvm_(std::move(kvm)), vm_(std::move(vm)), memory_(std::move(memory)),
	  shutdown_(std::move(shutdown))
{
}

Machine::~Machine()
{
	stop_vcpus();
}

Result<std::unique_ptr<Machine>> Machine::create(const Config &config)
{
	auto kvm = Kvm::open();
	if (!kvm)
		return kvm.error();
	auto vm = kvm->create_vm();
	if (!vm)
		return vm.error();
	auto memory = GuestMemory::create(config.machine.memory_mib << 20);
	if (!memory)
		return memory.error();
	auto shutdown = Shutdown::create();
	if (!shutdown)
		return shutdown.error();

	std::unique_ptr<Machine> machine(new Machine(config, std::move(*kvm), std::move(*vm),
						     std::move(*memory), std::move(*shutdown)));
	KAIROS_TRY(machine->create_interrupt_controllers());
	KAIROS_TRY(machine->register_memory());
	KAIROS_TRY(machine->create_devices());
	KAIROS_TRY(machine->load_guest());
	KAIROS_TRY(machine->create_vcpus());
	KAIROS_TRY(machine->watch_host_events());
	return machine;
}

Status Machine::create_interrupt_controllers()
{
	KAIROS_TRY(vm_.set_identity_map_addr(layout::kIdentityMapPageAddr));
	KAIROS_TRY(vm_.set_tss_addr(layout::kTssAddr));
	KAIROS_TRY(vm_.create_irqchip());
	return vm_.create_pit2();
}

Status Machine::register_memory()
{
	uint32_t slot = 0;
	for (const auto &region : memory_.regions())
		KAIROS_TRY(vm_.set_user_memory_region(slot++, region.gpa, region.size(),
						      region.mapping.data()));
	return {};
}

Status Machine::create_devices()
{
	switch (config_.console.output) {
	case Config::Console::Output::Stdout:
		console_ = ConsoleOutput::to_stdout();
		break;
	case Config::Console::Output::None:
		console_ = ConsoleOutput::discard();
		break;
	case Config::Console::Output::File: {
		auto file = ConsoleOutput::to_file(config_.console.file);
		if (!file)
			return file.error();
		console_ = std::move(*file);
		break;
	}
	}

	ConsoleOutput *console = console_.get();
	console->watch_line(kPanicBanner, [this] { guest_panicked_ = true; });
	console->watch_line(kHaltBanner, [this] {
		shutdown_.request(StopReason::PowerOff, "the guest halted (no ACPI power-off)");
	});
	serial_ = std::make_shared<devices::Serial>(
		std::make_shared<KvmIrqLine>(vm_, layout::kIrqCom1),
		[console](std::span<const uint8_t> bytes) { console->write(bytes); });
	KAIROS_TRY(pio_bus_.add(layout::kPortCom1, layout::kComPortSize, serial_));

	// reboot=k resets through the keyboard controller; the panic banner
	// before it tells a panic (panic=-1 resets at once) from a clean reboot.
	auto i8042 = std::make_shared<devices::I8042>([this] {
		if (guest_panicked_)
			shutdown_.request(StopReason::GuestPanic, "the guest kernel panicked and reset");
		else
			shutdown_.request(StopReason::Reset, "the guest reset through the i8042");
	});
	KAIROS_TRY(pio_bus_.add(layout::kPortI8042Data, 1, i8042->data_port()));
	KAIROS_TRY(pio_bus_.add(layout::kPortI8042Command, 1, i8042->command_port()));

	KAIROS_TRY(pio_bus_.add(layout::kPortRtc, layout::kRtcPortSize, std::make_shared<devices::Rtc>()));
	KAIROS_TRY(pio_bus_.add(layout::kPortPostCode, 1, std::make_shared<PostCodePort>()));
	return {};
}

Status Machine::load_guest()
{
	auto kernel = read_whole_file(config_.boot.kernel, "boot.kernel");
	if (!kernel)
		return kernel.error();
	std::vector<uint8_t> initrd;
	if (!config_.boot.initrd.empty()) {
		auto bytes = read_whole_file(config_.boot.initrd, "boot.initrd");
		if (!bytes)
			return bytes.error();
		initrd = std::move(*bytes);
	}
	auto entry = load_linux(memory_, {*kernel, initrd, config_.boot.cmdline});
	if (!entry)
		return make_error("boot.kernel {}: {}", config_.boot.kernel.string(), entry.error().message);
	boot_entry_ = *entry;

	auto mp_table = build_mp_table(layout::kMpTableAddr, config_.machine.vcpus);
	if (mp_table.size() > layout::kMpTableMaxSize)
		return make_error("MP table for {} vCPUs does not fit", config_.machine.vcpus);
	return memory_.write_bytes(layout::kMpTableAddr, mp_table);
}

Status Machine::create_vcpus()
{
	auto supported = kvm_.supported_cpuid();
	if (!supported)
		return supported.error();
	KAIROS_TRY(install_vcpu_kick_handler());

	CpuidOptions options;
	options.vcpu_count = config_.machine.vcpus;
	options.kvmclock = config_.clock.kvmclock;
	options.kairos = config_.clock.kairos;
	for (uint32_t id = 0; id < config_.machine.vcpus; ++id) {
		auto fd = vm_.create_vcpu(id);
		if (!fd)
			return fd.error();
		auto vcpu = std::make_unique<Vcpu>(id, std::move(*fd), pio_bus_, mmio_bus_, shutdown_);
		KAIROS_TRY(vcpu->configure(build_cpuid(*supported, id, options)));
		if (id == 0)
			KAIROS_TRY(vcpu->set_boot_state(boot_entry_));
		vcpus_.push_back(std::move(vcpu));
	}
	return {};
}

Status Machine::watch_host_events()
{
	auto loop = EventLoop::create();
	if (!loop)
		return loop.error();
	loop_ = std::move(*loop);

	// SIGINT/SIGTERM arrive as readable data, blocked everywhere else.
	sigset_t signals;
	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, nullptr);
	signal_fd_ = UniqueFd(signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK));
	if (!signal_fd_)
		return errno_error("signalfd for SIGINT/SIGTERM");
	KAIROS_TRY(loop_->watch(signal_fd_.get(), [this] {
		signalfd_siginfo info{};
		if (::read(signal_fd_.get(), &info, sizeof(info)) == sizeof(info))
			shutdown_.request(StopReason::Signal,
					  fmt::format("received {}", sigabbrev_np(static_cast<int>(info.ssi_signo))),
					  static_cast<int>(info.ssi_signo));
	}));
	KAIROS_TRY(loop_->watch(shutdown_.wake_fd(), [] {}));

	if (config_.console.input_from_stdin) {
		if (isatty(STDIN_FILENO)) {
			auto raw = RawTerminal::enter(STDIN_FILENO);
			if (!raw)
				return raw.error();
			raw_terminal_.emplace(std::move(*raw));
		}
		stdin_open_ = true;
	}
	return {};
}

// Reads stdin only while the UART has room, so typed or piped input waits
// in the pipe instead of overflowing the guest's receive FIFO.
void Machine::forward_console_input()
{
	if (!stdin_open_ || serial_->input_space() == 0)
		return;
	uint8_t buffer[kConsoleReadChunk];
	size_t want = std::min(sizeof(buffer), serial_->input_space());
	ssize_t got = ::read(STDIN_FILENO, buffer, want);
	if (got <= 0) {
		if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
			stdin_open_ = false;  // EOF: the guest keeps running without input
			loop_->unwatch(STDIN_FILENO);
		}
		return;
	}
	std::vector<uint8_t> forward;
	for (ssize_t i = 0; i < got; ++i) {
		uint8_t byte = buffer[i];
		auto action = raw_terminal_ ? escape_.feed(byte) : EscapeDetector::Action::Forward;
		if (action == EscapeDetector::Action::Quit) {
			shutdown_.request(StopReason::Signal, "quit from the console (Ctrl-A x)", SIGINT);
			return;
		}
		if (action == EscapeDetector::Action::Forward)
			forward.push_back(byte);
	}
	serial_->enqueue_input(forward);
}

RunResult Machine::run()
{
	started_ = std::chrono::steady_clock::now();
	for (auto &vcpu : vcpus_)
		vcpu->start();

	bool stdin_watched = false;
	while (!shutdown_.requested()) {
		// Watch stdin only while the guest reads and has room: input waits
		// in the pipe instead of being flushed at boot or overflowing.
		bool want_stdin = stdin_open_ && serial_->guest_reads_input() && serial_->input_space() > 0;
		if (want_stdin && !stdin_watched) {
			if (!loop_->watch(STDIN_FILENO, [this] { forward_console_input(); }).ok())
				stdin_open_ = false;
			stdin_watched = stdin_open_;
		} else if (!want_stdin && stdin_watched) {
			loop_->unwatch(STDIN_FILENO);
			stdin_watched = false;
		}
		auto status = loop_->run_once(kEventLoopTickMs);
		if (!status)
			shutdown_.request(StopReason::HostError, status.error().message);
	}
	stop_vcpus();
	stopped_ = std::chrono::steady_clock::now();
	raw_terminal_.reset();

	StopReason reason = shutdown_.reason();
	return {reason, shutdown_.detail(), exit_code_for(reason, shutdown_.signal_number())};
}

void Machine::stop_vcpus()
{
	for (auto &vcpu : vcpus_)
		vcpu->kick();
	for (auto &vcpu : vcpus_)
		vcpu->join();
}

std::string Machine::stats_json(const RunResult &result) const
{
	nlohmann::json stats;
	stats["exit"] = {{"reason", describe(result.reason)},
			 {"detail", result.detail},
			 {"code", result.exit_code}};
	stats["runtime_ms"] =
		std::chrono::duration_cast<std::chrono::milliseconds>(stopped_ - started_).count();
	stats["console_bytes"] = console_->bytes_written();
	stats["unclaimed_port_accesses"] = pio_bus_.unclaimed_accesses();
	stats["unclaimed_mmio_accesses"] = mmio_bus_.unclaimed_accesses();
	nlohmann::json vcpus = nlohmann::json::array();
	for (const auto &vcpu : vcpus_)
		vcpus.push_back({{"id", vcpu->id()}, {"exits", vcpu->exits()}});
	stats["vcpus"] = vcpus;
	return stats.dump(2) + "\n";
}

} // namespace kairos::vmm
