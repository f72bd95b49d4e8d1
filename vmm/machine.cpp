#include "vmm/machine.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <thread>

#include <nlohmann/json.hpp>

#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/irq_line.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "vmm/acpi.h"
#include "vmm/base/error.h"
#include "vmm/boot.h"
#include "vmm/cpuid.h"
#include "vmm/layout.h"
#include "vmm/mptable.h"

namespace kairos::vmm {
namespace {

constexpr int kEventLoopTickMs = 20;
constexpr int kVcpuStartWaitTries = 5000;
// After kairos.ko's panic notice the kernel still prints the end of the
// panic report; panic=-1 then resets at once. Give it this long to do so.
constexpr std::chrono::milliseconds kPanicGrace{1000};

nlohmann::json lateness_json(const outsourcing::LatenessSummary &summary)
{
	return {{"samples", summary.samples}, {"p50", summary.p50_ns}, {"p90", summary.p90_ns},
		{"p99", summary.p99_ns}, {"p99_9", summary.p999_ns}, {"max", summary.max_ns}};
}

nlohmann::json window_json(const outsourcing::TimerService &service, const outsourcing::WindowConfig &config)
{
	auto w = service.window_stats();
	return {{"policy", service.window_policy()},
		{"configured_policy", outsourcing::to_string(config.policy)},
		{"runtime_ns", config.runtime_ns}, {"period_ns", config.period_ns},
		{"timeout_ns", config.timeout_ns}, {"lead_ns", w.lead_ns},
		{"opened", w.opened}, {"closed_by_guest", w.closed_by_guest},
		{"closed_by_timeout", w.closed_by_timeout}, {"closed_by_detach", w.closed_by_detach},
		{"closed_by_budget", w.closed_by_budget}, {"budget_exhausted", w.budget_exhausted},
		{"admission_refusals", w.admission_refusals}, {"cpu_ns", w.cpu_ns}, {"open_ns", w.open_ns}};
}

// User plus system CPU time of the whole process (every thread), in ns.
uint64_t process_cpu_ns()
{
	rusage usage{};
	if (getrusage(RUSAGE_SELF, &usage) != 0)
		return 0;
	auto ns = [](const timeval &t) {
		return static_cast<uint64_t>(t.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(t.tv_usec) * 1000ULL;
	};
	return ns(usage.ru_utime) + ns(usage.ru_stime);
}

int64_t steady_ns()
{
	return std::chrono::duration_cast<std::chrono::nanoseconds>(
		       std::chrono::steady_clock::now().time_since_epoch())
		.count();
}
constexpr size_t kConsoleReadChunk = 256;

// An ISA interrupt line on the in-kernel IOAPIC/PIC pair.
class KvmIrqLine : public devices::IrqLine {
public:
	KvmIrqLine(const VmFd &vm, uint32_t gsi) : vm_(vm), gsi_(gsi) {}
	void set_level(bool high) override
	{
		// A device cannot act on a failure, and the guest may still run
		// (it polls, or the next edge gets through), so this is no reason
		// to stop. But a lost interrupt shows up as a hung driver, so say
		// why, once per line: the device may raise it on every access.
		auto status = vm_.set_irq_line(gsi_, high);
		if (!status && !failure_reported_.exchange(true))
			fmt::print(stderr, "kairos: interrupt lost, the guest may hang: {} (later failures on GSI {} "
				   "are not reported)\n",
				   status.error().message, gsi_);
	}

private:
	const VmFd &vm_;
	uint32_t gsi_;
	std::atomic<bool> failure_reported_{false};
};

// Port 0x80: Linux writes it to delay I/O. Claim it so it is not counted
// as an unclaimed access.
class PostCodePort : public devices::BusDevice {
public:
	std::string name() const override { return "POST code port"; }
	void read(uint64_t, std::span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0); }
	void write(uint64_t, std::span<const uint8_t>) override {}
};

Result<UniqueFd> periodic_timer(uint64_t period_ns, const char *what)
{
	UniqueFd fd(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
	if (!fd)
		return errno_error(fmt::format("timerfd_create for {}", what));
	itimerspec spec{};
	spec.it_interval.tv_sec = static_cast<time_t>(period_ns / 1'000'000'000ULL);
	spec.it_interval.tv_nsec = static_cast<long>(period_ns % 1'000'000'000ULL);
	spec.it_value = spec.it_interval;
	if (timerfd_settime(fd.get(), 0, &spec, nullptr) != 0)
		return errno_error(fmt::format("timerfd_settime for {}", what));
	return fd;
}

// Drains a timerfd; true if it had expired.
bool consume_timer(int fd)
{
	uint64_t expirations = 0;
	return ::read(fd, &expirations, sizeof(expirations)) == sizeof(expirations) && expirations > 0;
}

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
	KAIROS_TRY(machine->create_vcpus());
	KAIROS_TRY(machine->load_guest());
	if (config.clock.kairos)
		KAIROS_TRY(machine->create_paravirt_device());
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

	// reboot=k resets through the keyboard controller, reboot=a (or the
	// BIOS reset vector) through the ACPI reset register. The panic banner
	// before a reset tells a panic (panic=-1 resets at once) from a reboot.
	auto reset_through = [this](const char *how) {
		if (guest_panicked_)
			shutdown_.request(StopReason::GuestPanic, "the guest kernel panicked and reset");
		else
			shutdown_.request(StopReason::Reset, std::string("the guest reset through ") + how);
	};
	auto i8042 = std::make_shared<devices::I8042>([reset_through] { reset_through("the i8042"); });
	KAIROS_TRY(pio_bus_.add(layout::kPortI8042Data, 1, i8042->data_port()));
	KAIROS_TRY(pio_bus_.add(layout::kPortI8042Command, 1, i8042->command_port()));

	KAIROS_TRY(pio_bus_.add(layout::kPortRtc, layout::kRtcPortSize, std::make_shared<devices::Rtc>()));
	auto acpi_pm = std::make_shared<devices::AcpiPm>(
		[this] { shutdown_.request(StopReason::PowerOff, "the guest powered off through ACPI"); },
		[reset_through] { reset_through("the ACPI reset register"); });
	KAIROS_TRY(pio_bus_.add(layout::kPortAcpiSleepControl, devices::AcpiPm::kPortCount, acpi_pm));
	KAIROS_TRY(pio_bus_.add(layout::kPortPostCode, 1, std::make_shared<PostCodePort>()));
	return {};
}

// Without kvm-clock the guest must calibrate its TSC against the PIT, which
// fails where port I/O is slow (nested virtualization), and the ACPI
// hardware-reduced platform has no PIT tick to fall back on: the boot
// stalls. We know the guest's TSC rate, so we tell it, as firmware would,
// unless the user already did.
std::string Machine::guest_cmdline() const
{
	std::string cmdline = config_.boot.cmdline;
	if (config_.clock.kvmclock || cmdline.find("tsc_early_khz=") != std::string::npos || vcpus_.empty())
		return cmdline;
	auto khz = vcpus_.front()->tsc_khz();
	if (!khz) {
		// The guest still boots where the PIT is fast enough to calibrate
		// against; where it is not, this line explains the stall.
		fmt::print(stderr, "kairos: no tsc_early_khz for the guest, it calibrates its TSC itself: {}\n",
			   khz.error().message);
		return cmdline;
	}
	return cmdline + fmt::format(" tsc_early_khz={}", *khz);
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
	auto entry = load_linux(memory_, {*kernel, initrd, guest_cmdline()});
	if (!entry)
		return make_error("boot.kernel {}: {}", config_.boot.kernel.string(), entry.error().message);
	boot_entry_ = *entry;
	KAIROS_TRY(vcpus_.front()->set_boot_state(boot_entry_));

	// Firmware tables: the MP table for acpi=off guests, ACPI otherwise
	// (Linux prefers the MADT when both are there), and the reset stub.
	auto mp_table = build_mp_table(layout::kMpTableAddr, config_.machine.vcpus);
	if (mp_table.size() > layout::kMpTableMaxSize)
		return make_error("MP table for {} vCPUs does not fit", config_.machine.vcpus);
	KAIROS_TRY(memory_.write_bytes(layout::kMpTableAddr, mp_table));
	AcpiOptions acpi = acpi_options_for_machine(config_.machine.vcpus);
	auto tables = build_acpi_tables(layout::kAcpiTablesAddr, acpi);
	if (!tables)
		return tables.error();
	if (layout::kAcpiTablesAddr + tables->size() > layout::kMpTableAddr)
		return make_error("ACPI tables for {} vCPUs do not fit below the MP table", config_.machine.vcpus);
	KAIROS_TRY(memory_.write_bytes(layout::kAcpiTablesAddr, *tables));
	return memory_.write_bytes(layout::kResetVectorAddr, build_reset_vector(acpi));
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
	options.kairos_abi_version = KAIROS_ABI_VERSION;
	options.kairos_port_base = layout::kPortKairosBase;
	options.kairos_upcall_irq = layout::kIrqKairosUpcall;
	options.tsc_deadline_timer = kvm_.check_extension(KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	for (uint32_t id = 0; id < config_.machine.vcpus; ++id) {
		auto fd = vm_.create_vcpu(id);
		if (!fd)
			return fd.error();
		auto vcpu = std::make_unique<Vcpu>(id, std::move(*fd), pio_bus_, mmio_bus_, shutdown_);
		KAIROS_TRY(vcpu->configure(build_cpuid(*supported, id, options)));
		vcpus_.push_back(std::move(vcpu));
	}
	return {};
}

Status Machine::create_paravirt_device()
{
	// Upcalls go through an irqfd: raising an event from any thread
	// interrupts the guest without a trip through a vCPU thread.
	upcall_fd_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	if (!upcall_fd_)
		return errno_error("eventfd for the event-channel upcall");
	KAIROS_TRY(vm_.register_irqfd(upcall_fd_.get(), layout::kIrqKairosUpcall));
	int upcall = upcall_fd_.get();
	events_ = std::make_unique<pvclock::EventChannels>([upcall] {
		uint64_t one = 1;
		// The only failure of a nonblocking eventfd write is EAGAIN, a
		// counter already near 2^64: the upcall is pending anyway.
		[[maybe_unused]] auto written = ::write(upcall, &one, sizeof(one));
	});

	std::vector<int64_t> offsets;
	std::vector<const Vcpu *> vcpus;
	for (const auto &vcpu : vcpus_) {
		auto offset = vcpu->tsc_offset();
		if (!offset)
			return offset.error();
		offsets.push_back(*offset);
		vcpus.push_back(vcpu.get());
	}
	auto khz = vcpus_.front()->tsc_khz();
	if (!khz)
		return khz.error();
	time_ = std::make_unique<TimeService>(uint64_t{*khz} * 1000, std::move(offsets));
	time_->set_vcpus(std::move(vcpus));

	areas_ = std::make_unique<GuestAreas>(memory_);
	if (config_.outsourcing.enabled)
		KAIROS_TRY(create_timer_service());
	kairos_device_ = std::make_shared<KairosDevice>(*areas_, config_.machine.vcpus, *time_, *events_,
							timer_service_.get(), [this] {
		guest_panicked_ = true;
		panic_notice_ns_ = steady_ns();
	});
	return pio_bus_.add(layout::kPortKairosBase, KAIROS_PORT_COUNT, kairos_device_);
}

Status Machine::create_timer_service()
{
	auto priority = outsourcing::parse_priority(config_.outsourcing.priority);
	if (!priority)
		return priority.error();
	outsourcing::TimerHooks hooks;
	// As Xen refreshes time before a timer interrupt: the guest's handler
	// then reads accurate time.
	hooks.refresh_time = [this] { time_->publish_time(); };
	hooks.raise_event = [this] { events_->raise(KAIROS_EVENT_TIMER_EXPIRED); };
	outsourcing::TimerServiceConfig service_config;
	service_config.max_timers = config_.outsourcing.max_timers;
	service_config.priority = *priority;
	service_config.vcpu_count = config_.machine.vcpus;
	service_config.window = config_.outsourcing.window;
	service_config.advance_ns = config_.outsourcing.advance_ns;
	auto service = outsourcing::TimerService::create(service_config, std::move(hooks));
	if (!service)
		return service.error();
	timer_service_ = std::move(*service);
	// Doorbells and acks reach the timer thread without a userspace exit.
	// The ack matters most: the guest writes it at the end of every
	// completion tasklet, before the woken sleeper can run, and an exit to
	// this process costs far more than one KVM completes in the kernel.
	KAIROS_TRY(vm_.register_ioeventfd(timer_service_->doorbell_fd(),
					  static_cast<uint16_t>(layout::kPortKairosBase + KAIROS_PORT_DOORBELL), 4));
	KAIROS_TRY(vm_.register_ioeventfd(timer_service_->ack_fd(),
					  static_cast<uint16_t>(layout::kPortKairosBase + KAIROS_PORT_ACK), 4));
	// Work-done reports close priority windows: the same, no exit.
	return vm_.register_ioeventfd(timer_service_->done_fd(),
				      static_cast<uint16_t>(layout::kPortKairosBase + KAIROS_PORT_DONE), 4);
}

// Priority windows act on the vCPU threads, which exist only now.
void Machine::hand_vcpus_to_timer_service()
{
	std::vector<outsourcing::VcpuThread> threads;
	for (const auto &vcpu : vcpus_) {
		// Set by the thread first thing; bounded wait (a thread that
		// cannot start has already requested shutdown).
		for (int tries = 0; vcpu->thread_id() == 0 && tries < kVcpuStartWaitTries; ++tries)
			std::this_thread::sleep_for(std::chrono::milliseconds(1));
		if (vcpu->thread_id() == 0)
			return;
		threads.push_back({vcpu->thread_id(), vcpu->cpu_clock()});
	}
	std::string warning = timer_service_->set_vcpu_scheduler(
		std::make_unique<outsourcing::ThreadReservations>(std::move(threads), config_.outsourcing.window));
	if (!warning.empty())
		fmt::print(stderr, "kairos: {}\n", warning);
}

Status Machine::start_periodic_timers()
{
	if (!time_)
		return {};
	auto refresh = periodic_timer(uint64_t{config_.clock.refresh_ms} * 1'000'000ULL, "clock.refresh_ms");
	if (!refresh)
		return refresh.error();
	refresh_timer_ = std::move(*refresh);
	KAIROS_TRY(loop_->watch(refresh_timer_.get(), [this] {
		if (consume_timer(refresh_timer_.get()))
			time_->publish();
	}));
	if (config_.events.virtual_timer_hz == 0)
		return {};
	auto tick = periodic_timer(1'000'000'000ULL / config_.events.virtual_timer_hz, "events.virtual_timer_hz");
	if (!tick)
		return tick.error();
	virtual_timer_ = std::move(*tick);
	return loop_->watch(virtual_timer_.get(), [this] {
		if (!consume_timer(virtual_timer_.get()))
			return;
		// As Xen does before its timer interrupt: fresh time first.
		time_->publish_time();
		events_->raise(KAIROS_EVENT_VIRTUAL_TIMER);
	});
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
	// Unblocked, they would kill the process instead of stopping it cleanly.
	if (int error = pthread_sigmask(SIG_BLOCK, &signals, nullptr); error != 0)
		return errno_error("pthread_sigmask blocking SIGINT/SIGTERM/SIGHUP", error);
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
	return start_periodic_timers();
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
	// A line of host input is also a virtual console event for the guest.
	if (events_ && std::find(forward.begin(), forward.end(), '\n') != forward.end())
		events_->raise(KAIROS_EVENT_CONSOLE);
}

RunResult Machine::run()
{
	started_ = std::chrono::steady_clock::now();
	if (timer_service_) {
		auto started = timer_service_->start();
		if (!started)
			shutdown_.request(StopReason::HostError, started.error().message);
		else if (!started->empty())
			fmt::print(stderr, "kairos: {}\n", *started);
	}
	for (auto &vcpu : vcpus_)
		vcpu->start();
	if (timer_service_)
		hand_vcpus_to_timer_service();

	bool stdin_watched = false;
	while (!shutdown_.requested()) {
		// Watch stdin only while the guest reads and has room: input waits
		// in the pipe instead of being flushed at boot or overflowing.
		bool want_stdin = stdin_open_ && serial_->guest_reads_input() && serial_->input_space() > 0;
		if (want_stdin && !stdin_watched) {
			// The guest runs on without input; say why it gets none.
			if (auto watched = loop_->watch(STDIN_FILENO, [this] { forward_console_input(); }); !watched) {
				fmt::print(stderr, "kairos: console input stops: {}\n", watched.error().message);
				stdin_open_ = false;
			}
			stdin_watched = stdin_open_;
		} else if (!want_stdin && stdin_watched) {
			loop_->unwatch(STDIN_FILENO);
			stdin_watched = false;
		}
		auto status = loop_->run_once(kEventLoopTickMs);
		if (!status)
			shutdown_.request(StopReason::HostError, status.error().message);
		int64_t panic_notice = panic_notice_ns_.load();
		if (panic_notice != 0 && steady_ns() - panic_notice > std::chrono::nanoseconds(kPanicGrace).count())
			shutdown_.request(StopReason::GuestPanic, "the guest kernel panicked (kairos.ko notice)");
	}
	stop_vcpus();
	if (timer_service_)
		timer_service_->stop();
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
	stats["process_cpu_ns"] = process_cpu_ns();
	nlohmann::json vcpus = nlohmann::json::array();
	std::vector<uint64_t> windows = timer_service_ ? timer_service_->window_raises() : std::vector<uint64_t>{};
	for (const auto &vcpu : vcpus_)
		vcpus.push_back({{"id", vcpu->id()}, {"exits", vcpu->exits()},
				 {"cpu_ns", vcpu->final_cpu_ns()}, {"run_delay_ns", vcpu->final_run_delay_ns()},
				 {"preemptions", vcpu->final_preemptions()},
				 {"windows", windows.size() > vcpu->id() ? windows[vcpu->id()] : 0}});
	stats["vcpus"] = vcpus;
	if (kairos_device_) {
		nlohmann::json ports = nlohmann::json::object();
		const std::pair<uint32_t, const char *> named[] = {
			{KAIROS_EVENT_VIRTUAL_TIMER, "virtual_timer"},
			{KAIROS_EVENT_CONSOLE, "console"},
			{KAIROS_EVENT_DEBUG, "debug"},
			{KAIROS_EVENT_TIMER_EXPIRED, "timer_expired"}};
		for (const auto &[port, name] : named) {
			auto port_stats = events_->stats(port);
			ports[name] = {{"port", port},
				       {"raised", port_stats.raised},
				       {"injected", port_stats.injected},
				       {"held_before_registration", port_stats.held}};
		}
		nlohmann::json drift = nlohmann::json::object();
		for (uint32_t tag = 0; tag < KAIROS_SAMPLE_TAGS; ++tag) {
			auto samples = kairos_device_->clock_samples(tag);
			if (samples.size() < 2)
				continue;
			auto summary = pvclock::summarise_drift(samples);
			// (seconds since the first sample, guest-minus-host offset
			// change in us), thinned to at most ~1000 points for plots.
			nlohmann::json series = nlohmann::json::array();
			size_t step = std::max<size_t>(1, samples.size() / 1000);
			for (size_t i = 0; i < samples.size(); i += step) {
				double host = static_cast<double>(samples[i].host_ns - samples[0].host_ns);
				double guest = static_cast<double>(static_cast<int64_t>(samples[i].guest_ns - samples[0].guest_ns));
				series.push_back({host / 1e9, (guest - host) / 1e3});
			}
			drift[std::to_string(tag)] = {{"samples", summary.samples},
						      {"span_s", summary.span_s},
						      {"drift_ppm", summary.drift_ppm},
						      {"envelope_drift_ppm", summary.envelope_drift_ppm},
						      {"realtime_offset_ms", summary.realtime_offset_ms},
						      {"end_to_end_us", summary.end_to_end_us},
						      {"max_deviation_us", summary.max_deviation_us},
						      {"series", series}};
		}
		stats["clock_drift"] = drift;
		if (timer_service_) {
			auto t = timer_service_->stats();
			stats["outsourcing"] = {
				{"priority", config_.outsourcing.priority},
				{"doorbells", t.doorbells}, {"acks", t.acks}, {"requests", t.requests},
				{"polled_requests", t.polled_requests},
				{"adds", t.adds}, {"mods", t.mods}, {"dels", t.dels}, {"expiries", t.expiries},
				{"delivered", t.delivered}, {"coalesced", t.coalesced}, {"superseded", t.superseded},
				{"errors", {{"bad_op", t.errors_bad_op}, {"no_entry", t.errors_no_entry},
					    {"quota", t.errors_quota}, {"dropped", t.errors_dropped},
					    {"bad_vcpu", t.errors_bad_vcpu},
					    {"bad_request_indices", t.bad_request_indices},
					    {"bad_completion_indices", t.bad_completion_indices}}},
				{"armed", t.armed},
				{"lateness_ns", lateness_json(t.lateness)},
				{"timer_thread_cpu_ns", timer_service_->timer_thread_cpu_ns()},
				{"advance_ns", timer_service_->advance_ns()},
				{"window", window_json(*timer_service_, config_.outsourcing.window)},
				{"ack_lateness_ns", lateness_json(t.ack_lateness)},
				{"failure", timer_service_->failure()}};
		}
		stats["kairos"] = {{"registrations", kairos_device_->registrations()},
				   {"commands", kairos_device_->commands()},
				   {"failed_commands", kairos_device_->failed_commands()},
				   {"time_publishes", time_->publishes()},
				   {"upcalls", events_->upcalls()},
				   {"events", ports}};
	}
	return stats.dump(2) + "\n";
}

} // namespace kairos::vmm
