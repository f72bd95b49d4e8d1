#include "vmm/paravirt.h"

#include <thread>

#include "base/error.h"
#include "vmm/layout.h"

namespace kairos::vmm {
namespace {

// 5 s for a vCPU thread to report its thread id.
constexpr int kVcpuStartWaitTries = 5000;

Result<TimerFd> periodic_timer(uint64_t period_ns, const char *what)
{
	KAIROS_TRY_ASSIGN(timer, TimerFd::create(TimerFd::Mode::NonBlocking, what));
	KAIROS_TRY(timer.arm_periodic(period_ns));
	return timer;
}

uint16_t kairos_port(uint32_t offset)
{
	return static_cast<uint16_t>(layout::kPortKairosBase + offset);
}

}  // namespace

Result<std::unique_ptr<Paravirt>> Paravirt::create(const VmFd &vm, GuestAreas &areas, const Config &config,
						   ParavirtVcpus vcpus, devices::Bus &pio_bus, ParavirtEvents events,
						   const Logger &log, EventLog &event_log)
{
	std::unique_ptr<Paravirt> paravirt(new Paravirt(vm, config, log, event_log));
	Paravirt *self = paravirt.get();
	paravirt->events_ = std::make_unique<pvclock::EventChannels>([self] { self->pulse_upcall(); });
	paravirt->time_ = std::make_unique<pvclock::TimeService>(vcpus.tsc_hz, std::move(vcpus.tsc_offsets));
	paravirt->time_->set_vcpu_threads(std::move(vcpus.thread_id_of));
	if (config.outsourcing.enabled)
		KAIROS_TRY(paravirt->create_timer_service(vm, std::move(events.timer_service_failed)));
	paravirt->device_ = std::make_shared<KairosDevice>(areas, config.machine.vcpus, *paravirt->time_,
							   *paravirt->events_, paravirt->timer_service_.get(),
							   std::move(events.guest_panicked), log, event_log);
	KAIROS_TRY(pio_bus.add(layout::kPortKairosBase, KAIROS_PORT_COUNT, paravirt->device_));
	return paravirt;
}

void Paravirt::pulse_upcall()
{
	// An edge on the upcall line, injected by the raising thread itself
	// (KVM_IRQ_LINE: kvm_set_irq, synchronous) and not through an irqfd:
	// KVM injects an irqfd on an IOAPIC line from a workqueue, because only
	// MSI routes can be injected from the eventfd's wake-up
	// (virt/kvm/eventfd.c irqfd_wakeup, kvm_arch_set_irq_inatomic). That
	// kworker runs at normal priority on the raising CPU, so every expiry's
	// interrupt waited behind the host's load, and behind the real-time
	// timer thread's own pass, whatever priority the timer thread or the
	// vCPU held (a sched_switch trace in the emulated machine shows
	// kairos-timer -> kworker -> kairos-vcpu0 on each expiry).
	upcall_.pulse();
}

Status Paravirt::create_timer_service(const VmFd &vm, std::function<void(const std::string &)> failed)
{
	outsourcing::TimerHooks hooks;
	// As Xen refreshes time before a timer interrupt: the guest's handler
	// then reads accurate time.
	hooks.refresh_time = [this] { time_->publish_time(); };
	hooks.raise_event = [this] { events_->raise(KAIROS_EVENT_TIMER_EXPIRED); };
	hooks.stopped_on_failure = [this, failed = std::move(failed)](const std::string &why) {
		event_log_.emit(EventKind::TimerThreadFailed, {{"reason", why}});
		if (failed)
			failed(why);
	};
	outsourcing::TimerServiceConfig service_config;
	service_config.max_timers = config_.outsourcing.max_timers;
	service_config.priority = config_.outsourcing.priority;
	service_config.vcpu_count = config_.machine.vcpus;
	service_config.window = config_.outsourcing.window;
	service_config.advance_ns = config_.outsourcing.advance_ns;
	service_config.guest_wakeups_hz = config_.outsourcing.guest_wakeups_hz;
	KAIROS_TRY_ASSIGN(service, outsourcing::TimerService::create(service_config, std::move(hooks), log_));
	timer_service_ = std::move(service);
	// Doorbells and acks reach the timer thread without a userspace exit.
	// The ack matters most: the guest writes it at the end of every
	// completion tasklet, before the woken sleeper can run, and an exit to
	// this process costs far more than one KVM completes in the kernel.
	KAIROS_TRY(vm.register_ioeventfd(timer_service_->doorbell_fd(), kairos_port(KAIROS_PORT_DOORBELL), 4));
	KAIROS_TRY(vm.register_ioeventfd(timer_service_->ack_fd(), kairos_port(KAIROS_PORT_ACK), 4));
	// Work-done reports close priority windows: the same, no exit.
	return vm.register_ioeventfd(timer_service_->done_fd(), kairos_port(KAIROS_PORT_DONE), 4);
}

Status Paravirt::watch_periodic_timers(EventLoop &loop)
{
	KAIROS_TRY_ASSIGN(refresh,
			  periodic_timer(uint64_t{config_.clock.refresh_ms} * 1'000'000ULL, "clock.refresh_ms"));
	refresh_timer_ = std::move(refresh);
	KAIROS_TRY(loop.watch(refresh_timer_->fd(), [this] {
		if (refresh_timer_->consume() > 0)
			time_->publish();
	}));
	if (config_.events.virtual_timer_hz == 0)
		return {};
	KAIROS_TRY_ASSIGN(
		tick, periodic_timer(1'000'000'000ULL / config_.events.virtual_timer_hz, "events.virtual_timer_hz"));
	virtual_timer_ = std::move(tick);
	return loop.watch(virtual_timer_->fd(), [this] {
		if (virtual_timer_->consume() == 0)
			return;
		// As Xen does before its timer interrupt: fresh time first.
		time_->publish_time();
		events_->raise(KAIROS_EVENT_VIRTUAL_TIMER);
	});
}

Status Paravirt::start_timer_service(const Confinement &confinement, const std::vector<std::unique_ptr<Vcpu>> &vcpus)
{
	if (!timer_service_)
		return {};
	std::vector<outsourcing::VcpuThread> threads;
	std::vector<uint32_t> thread_ids;
	for (const auto &vcpu : vcpus) {
		// Set by the thread first thing; bounded wait (a thread that
		// cannot start has already requested shutdown).
		for (int tries = 0; vcpu->thread_id() == 0 && tries < kVcpuStartWaitTries; ++tries)
			std::this_thread::sleep_for(std::chrono::milliseconds(1));
		if (vcpu->thread_id() == 0)
			return make_error("vCPU {}'s thread did not start", vcpu->id());
		threads.push_back({vcpu->thread_id(), vcpu->cpu_clock()});
		thread_ids.push_back(static_cast<uint32_t>(vcpu->thread_id()));
	}
	KAIROS_TRY_ASSIGN(warning, timer_service_->start([&confinement, &thread_ids] {
		return confinement.enter_timer(thread_ids, "kairos-timer");
	}));
	if (!warning.empty())
		log_.warn("{}", warning);
	else
		log_.info("the timer thread runs at outsourcing.priority {}",
			  outsourcing::to_string(config_.outsourcing.priority));
	std::string windows = timer_service_->set_vcpu_scheduler(
		std::make_unique<outsourcing::ThreadReservations>(std::move(threads), config_.outsourcing.window));
	if (!windows.empty())
		log_.warn("{}", windows);
	return {};
}

void Paravirt::stop_timer_service()
{
	if (timer_service_)
		timer_service_->stop();
}

void Paravirt::raise_console_event()
{
	events_->raise(KAIROS_EVENT_CONSOLE);
}

void Paravirt::raise_event(uint32_t port)
{
	events_->raise(port);
}

void Paravirt::hold_timers()
{
	if (timer_service_)
		timer_service_->hold();
}

void Paravirt::release_timers()
{
	if (timer_service_)
		timer_service_->release();
}

void Paravirt::account_pause(uint64_t paused_ns)
{
	time_->add_stolen_ns(paused_ns);
	time_->publish();
}

}  // namespace kairos::vmm
