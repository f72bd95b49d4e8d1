#include "vmm/machine.h"

#include <signal.h>
#include <unistd.h>

#include "base/error.h"
#include "devices/serial.h"
#include "vmm/console_input.h"
#include "vmm/cpuid.h"
#include "vmm/guest_loader.h"
#include "vmm/layout.h"
#include "vmm/legacy_devices.h"
#include "vmm/paravirt.h"
#include "vmm/stop_sources.h"

namespace kairos::vmm {

// After kairos.ko's panic notice, time for the rest of the report to print.
static constexpr uint64_t kPanicGraceNs = 1'000'000'000;

Machine::Machine(const Config &config, const Logger &log, EventLog &event_log, VmFd vm, GuestMemory memory,
		 Shutdown shutdown)
	: config_(config), log_(log), event_log_(event_log), vm_(std::move(vm)), memory_(std::move(memory)),
	  areas_(memory_), shutdown_(std::move(shutdown))
{
}

Machine::~Machine()
{
	stop_vcpus();
}

Result<std::unique_ptr<Machine>> Machine::create(const Config &config, PreparedRun prepared, const Logger &log,
						 EventLog &event_log)
{
	std::unique_ptr<Machine> machine;
	{
		// /dev/kvm is closed at the end of this block: the run needs only
		// the VM and vCPU fds (docs/SECURITY.md, confinement).
		KAIROS_TRY_ASSIGN(kvm, Kvm::open());
		KAIROS_TRY_ASSIGN(vm, kvm.create_vm());
		KAIROS_TRY_ASSIGN(shutdown, Shutdown::create());
		machine.reset(new Machine(config, log, event_log, std::move(vm), std::move(prepared.guest.memory),
					  std::move(shutdown)));
		KAIROS_TRY(machine->create_interrupt_controllers());
		KAIROS_TRY(machine->register_memory());
		KAIROS_TRY(machine->create_devices());
		KAIROS_TRY_ASSIGN(virtio, VirtioDevices::create(config, std::move(prepared.drives), machine->areas_,
								machine->vm_, machine->mmio_bus_, log));
		machine->virtio_ = std::move(virtio);
		KAIROS_TRY(machine->create_vcpus(kvm));
	}
	KAIROS_TRY(machine->finish_boot(prepared.guest.entry));
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
		KAIROS_TRY(vm_.set_user_memory_region(slot++, region.gpa, region.size(), region.mapping.data()));
	return {};
}

Status Machine::create_devices()
{
	KAIROS_TRY_ASSIGN(console_output, ConsoleOutput::for_config(config_.console, log_));
	console_ = std::move(console_output);

	console_->watch_line(kPanicBanner, [this] { mark_panicked("console"); });
	console_->watch_line(kHaltBanner, [this] {
		shutdown_.request(StopReason::PowerOff,
				  "the guest halted its CPUs (\"System halted\": halt -f, or power-off without ACPI)");
	});
	LegacyEvents events;
	events.power_off = [this] { shutdown_.request(StopReason::PowerOff, "the guest powered off through ACPI"); };
	// A panic banner before the reset: panic=-1's reset, not a reboot.
	events.reset = [this](const char *how) {
		if (guest_panicked_)
			shutdown_.request(StopReason::GuestPanic, "the guest kernel panicked and reset");
		else
			shutdown_.request(StopReason::Reset, std::string("the guest reset through ") + how);
	};
	KAIROS_TRY_ASSIGN(legacy, LegacyDevices::attach(
					  pio_bus_,
					  [this](uint32_t gsi) { return std::make_shared<KvmIrqLine>(vm_, gsi, log_); },
					  console_->serial_sink(), std::move(events)));
	legacy_ = std::move(legacy);
	return {};
}

Status Machine::finish_boot(const BootEntry &entry)
{
	auto khz = guest_tsc_khz(vm_, vcpus_);
	if (!khz && !config_.clock.kvmclock)  // if the guest's own calibration stalls, this says why
		log_.warn("no tsc_early_khz for the guest, it calibrates its TSC itself: {}", khz.error().message);
	KAIROS_TRY(finish_guest_cmdline(memory_, config_, khz ? std::optional(*khz) : std::nullopt));
	return vcpus_.front()->set_boot_state(entry);
}

Status Machine::create_vcpus(const Kvm &kvm)
{
	KAIROS_TRY_ASSIGN(supported, kvm.supported_cpuid());
	KAIROS_TRY(install_vcpu_kick_handler());
	CpuidOptions options =
		kairos_cpuid_options(config_.machine.vcpus, config_.clock.kvmclock, config_.clock.kairos);
	options.tsc_deadline_timer = kvm.check_extension(KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	for (uint32_t id = 0; id < config_.machine.vcpus; ++id) {
		auto fd = vm_.create_vcpu(id);
		if (!fd)
			return fd.error();
		auto vcpu = std::make_unique<Vcpu>(id, std::move(*fd), pio_bus_, mmio_bus_, memory_, shutdown_,
						   run_gate_, log_);
		KAIROS_TRY(vcpu->configure(build_cpuid(supported, id, options)));
		vcpus_.push_back(std::move(vcpu));
	}
	return {};
}

Status Machine::create_paravirt_device()
{
	ParavirtVcpus vcpus;
	for (const auto &vcpu : vcpus_) {
		KAIROS_TRY_ASSIGN(offset, vcpu->tsc_offset());
		vcpus.tsc_offsets.push_back(offset);
	}
	KAIROS_TRY_ASSIGN(khz, guest_tsc_khz(vm_, vcpus_));
	vcpus.tsc_hz = uint64_t{khz} * 1000;
	// vcpus_ is complete and outlives paravirt_ (destroyed last).
	vcpus.thread_id_of = [this](uint32_t vcpu) { return vcpus_[vcpu]->thread_id(); };
	ParavirtEvents events{[this] { note_panic(); },
			      [this](const std::string &why) { shutdown_.request(StopReason::HostError, why); }};
	KAIROS_TRY_ASSIGN(paravirt, Paravirt::create(vm_, areas_, config_, std::move(vcpus), pio_bus_,
						     std::move(events), log_, event_log_));
	paravirt_ = std::move(paravirt);
	return {};
}

Status Machine::watch_host_events()
{
	KAIROS_TRY_ASSIGN(loop, EventLoop::create());
	loop_ = std::move(loop);
	KAIROS_TRY_ASSIGN(signals, StopSignals::watch(*loop_, shutdown_));
	stop_signals_ = std::move(signals);
	KAIROS_TRY(loop_->watch(shutdown_.wake_fd(), [] {}));
	KAIROS_TRY(console_->attach(*loop_));   // the loop writes console output out
	KAIROS_TRY(legacy_->watch(*loop_));     // raises the RTC's timed interrupts
	KAIROS_TRY(event_log_.attach(*loop_));  // and writes the event log
	KAIROS_TRY_ASSIGN(panic, PanicNotice::watch(*loop_, shutdown_, kPanicGraceNs));
	panic_notice_ = std::move(panic);

	if (config_.console.input_from_stdin && terminal_of_another_job(STDIN_FILENO)) {
		log_.warn("console input: stdin is the terminal of another, foreground job (kairos runs in the "
			  "background): the guest gets no input from it; console.input \"none\" says so without "
			  "this line");
	} else if (config_.console.input_from_stdin) {
		ConsoleInput::Hooks hooks;
		hooks.quit = [this] { shutdown_.request(StopReason::UserQuit, "Ctrl-A x on the console"); };
		// A line of host input is also a virtual console event.
		hooks.line = [this] {
			if (paravirt_)
				paravirt_->raise_console_event();
		};
		KAIROS_TRY_ASSIGN(input,
				  ConsoleInput::open(STDIN_FILENO, *legacy_->serial(), *loop_, std::move(hooks), log_));
		console_input_ = std::move(input);
	}
	return paravirt_ ? paravirt_->watch_periodic_timers(*loop_) : Status{};
}

// From a vCPU thread (kairos.ko's panic command): the dump that follows
// reaches the console before the VM stops.
void Machine::note_panic()
{
	mark_panicked("kairos.ko");
	if (panic_notice_)
		panic_notice_->notice();
	else
		shutdown_.request(StopReason::GuestPanic, "the guest kernel panicked (kairos.ko notice)");
}

// The first sign of a panic, whichever source saw it, is the event.
void Machine::mark_panicked(const char *source)
{
	if (!guest_panicked_.exchange(true))
		event_log_.emit(EventKind::GuestPanic, {{"source", source}});
}

KvmDescriptors Machine::kvm_descriptors() const
{
	KvmDescriptors kvm{.vm = vm_.fd(), .vcpus = std::vector<int>(vcpus_.size(), -1)};
	for (const auto &vcpu : vcpus_)
		if (vcpu->id() < kvm.vcpus.size())
			kvm.vcpus[vcpu->id()] = vcpu->kvm_fd();
	return kvm;
}

RunResult Machine::run(const Confinement &confinement)
{
	started_ = std::chrono::steady_clock::now();
	confinement_ = confinement.record();
	// The vCPU threads first, held at the gate until the rest has started:
	// the timer thread's seccomp filter names their thread ids, the only
	// threads whose scheduling it may change.
	run_gate_.close();
	for (auto &vcpu : vcpus_)
		vcpu->start(confinement);
	Status timers = paravirt_ ? paravirt_->start_timer_service(confinement, vcpus_) : Status{};
	if (Status started = timers ? virtio_.start(confinement) : timers; !started)
		shutdown_.request(StopReason::HostError, started.error().message);
	run_gate_.open();
	event_log_.emit(EventKind::VcpusRunning, {{"vcpus", vcpus_.size()}});
	// Every thread exists, and this one may still list /proc/self/task
	// (the others are confined already): --stats's proof of the drop.
	confinement_.threads_at_start = capabilities_of_every_thread();
	// Last thread created; the loop below is the first guest input it reads.
	if (Status confined = confinement.enter(ThreadKind::Main, "kairos-main"); !confined)
		shutdown_.request(StopReason::HostError, confined.error().message);

	while (!shutdown_.requested()) {
		if (console_input_)
			console_input_->update_watch();
		// No tick: every reason to look again is an fd (ARCHITECTURE.md).
		auto status = loop_->run_once(-1);
		if (!status)
			shutdown_.request(StopReason::HostError, status.error().message);
	}
	// The timer thread first: it closes every window, so no vCPU thread
	// exits in SCHED_DEADLINE (a 6.1 host hung after such exits).
	if (paravirt_)
		paravirt_->stop_timer_service();
	stop_vcpus();
	virtio_.stop();  // after the vCPUs: no notification comes any more
	stopped_ = std::chrono::steady_clock::now();
	console_->drain(kConsoleDrainBudget);  // before the last line and the stats
	if (console_input_)
		console_input_->restore_terminal();

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

}  // namespace kairos::vmm
