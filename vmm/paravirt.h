// Paravirt: the Kairos paravirtual device and the services behind it
// (DESIGN.md 1): the event-channel upcall (an edge on its IOAPIC line), event channels, time
// publishing into the shared-info page, the timer service of outsourced
// timers with its ioeventfds, and KairosDevice, the port handler that
// joins them to the I/O bus. Machine owns one when clock.kairos is on.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/logger.h"
#include "base/result.h"
#include "base/timer_fd.h"
#include "devices/bus.h"
#include "outsourcing/reservation.h"
#include "outsourcing/timer_service.h"
#include "pvclock/event_channels.h"
#include "pvclock/time_service.h"
#include "vmm/config.h"
#include "vmm/event_log.h"
#include "vmm/event_loop.h"
#include "vmm/guest_areas.h"
#include "vmm/guest_memory.h"
#include "vmm/kairos_device.h"
#include "vmm/kvm.h"
#include "vmm/layout.h"
#include "vmm/vcpu.h"

namespace kairos::vmm {

// What the services need to know of the vCPUs before their threads run.
// What the paravirtual device reports to the VMM.
struct ParavirtEvents {
	// On a vCPU thread: kairos.ko reported a guest panic.
	std::function<void()> guest_panicked;
	// On the timer thread: it stopped on its own, with the reason; the
	// guest's outsourced timers no longer fire.
	std::function<void(const std::string &)> timer_service_failed;
};

struct ParavirtVcpus {
	std::vector<int64_t> tsc_offsets;  // guest minus host TSC, per vCPU
	uint64_t tsc_hz = 0;
	pvclock::TimeService::ThreadIdOf thread_id_of;
};

class Paravirt {
public:
	// Creates the services, the upcall line and the timer
	// service's ioeventfds with KVM, and puts the device on `pio_bus` at
	// layout::kPortKairosBase. `events` say what the VMM must act on;
	// `event_log` (--events) hears of registrations and a failed timer
	// thread, and outlives this, as `log` does.
	// `areas` (the pages the guest registers) outlives this.
	static Result<std::unique_ptr<Paravirt>> create(const VmFd &vm, GuestAreas &areas, const Config &config,
							ParavirtVcpus vcpus, devices::Bus &pio_bus,
							ParavirtEvents events, const Logger &log, EventLog &event_log);

	// The periodic time refresh (clock.refresh_ms) and virtual timer
	// events (events.virtual_timer_hz) on the main loop.
	Status watch_periodic_timers(EventLoop &loop);
	// The timer thread, once the vCPU threads exist and before they run
	// (Machine::run holds them at the run gate): waits, boundedly, for
	// each vCPU thread's id; starts the timer thread, which confines
	// itself with sched_setattr allowed on those threads only; then hands
	// them over for priority windows. Logs the service's warnings (a
	// priority not permitted); an error, which stops the VM, if a vCPU
	// thread did not report its id within 5 s (its filter could not name
	// it), or the timer thread could not start or confine itself
	// (confinement must outlive the thread).
	Status start_timer_service(const Confinement &confinement, const std::vector<std::unique_ptr<Vcpu>> &vcpus);
	// After the vCPUs stopped.
	void stop_timer_service();
	// A line of host console input is a virtual console event.
	void raise_console_event();
	// kairos ctl raise-event PORT (port < KAIROS_EVENT_PORTS).
	void raise_event(uint32_t port);
	// kairos ctl pause, before the vCPUs stop: outsourced timers that fall
	// due wait until release_timers() (TimerService::hold).
	void hold_timers();
	// After a pause of `paused_ns` and before the vCPUs run again: the
	// pause is stolen time, and the guest's first look at the page finds
	// fresh time.
	void account_pause(uint64_t paused_ns);
	// Once they run again: what fell due meanwhile fires, each once.
	void release_timers();

	bool outsourcing() const { return timer_service_ != nullptr; }
	const outsourcing::TimerService *timer_service() const { return timer_service_.get(); }
	KairosDevice *device() const { return device_.get(); }
	const pvclock::EventChannels &events() const { return *events_; }
	const pvclock::TimeService &time() const { return *time_; }

private:
	Paravirt(const VmFd &vm, const Config &config, const Logger &log, EventLog &event_log)
		: config_(config), log_(log), event_log_(event_log), upcall_(vm, layout::kIrqKairosUpcall, log)
	{
	}
	// The event-channel upcall: an edge on its line, from the calling thread.
	void pulse_upcall();
	Status create_timer_service(const VmFd &vm, std::function<void(const std::string &)> failed);

	const Config &config_;
	const Logger &log_;
	EventLog &event_log_;
	// Declared before what uses them: destroyed after.
	KvmIrqLine upcall_;  // the event-channel upcall line (IOAPIC)
	std::unique_ptr<pvclock::EventChannels> events_;
	std::unique_ptr<pvclock::TimeService> time_;
	std::unique_ptr<outsourcing::TimerService> timer_service_;  // null when outsourcing is off
	std::shared_ptr<KairosDevice> device_;
	std::optional<TimerFd> refresh_timer_;
	std::optional<TimerFd> virtual_timer_;
};

}  // namespace kairos::vmm
