// Machine's reports and the control socket's requests (kairos ctl), on
// the main loop's thread: status, live statistics, pause and resume, the
// stops and events a user asks for.
//
// Pause and resume (README "Driving a running VM"): the vCPUs stop entering
// KVM_RUN, and nothing else stops. Guest time keeps following the host's
// (the TSC runs on, kvm-clock and the Kairos page keep host time and are
// republished as ever), so the guest's clocks jump forward over the pause
// and never back. The pause is stolen time in the Kairos page. Outsourced
// timers that fall due meanwhile are held by the timer service and fire
// once at resume; the RTC's and the virtual timer's interrupts stay
// pending in KVM's irqchip, and the guest takes them when it runs again.
#include <nlohmann/json.hpp>

#include "vmm/layout.h"
#include "vmm/machine.h"
#include "vmm/stats.h"

namespace kairos::vmm {
namespace {

uint64_t ms_of(std::chrono::steady_clock::duration duration)
{
	return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(duration).count());
}

}  // namespace

std::string Machine::stats_json(const RunResult &result) const
{
	// Only a machine create() finished runs: legacy_ and loop_ are set.
	return vmm::stats_json({config_, result, stopped_ - started_, *console_, legacy_->serial().get(),
				loop_->wakeups(), loop_->timeouts(), pio_bus_, mmio_bus_, vcpus_, paravirt_.get(),
				legacy_->rtc()->interrupts_raised(), confinement_, virtio_.stats()});
}

Status Machine::serve_control(ControlSocket &socket)
{
	return socket.attach(*loop_, [this](const ControlRequest &request) { return control(request); });
}

std::string Machine::control(const ControlRequest &request)
{
	switch (request.command) {
	case ControlCommand::Status:
		return status_reply();
	case ControlCommand::Stats:
		return live_stats_reply();
	case ControlCommand::Pause:
		return pause();
	case ControlCommand::Resume:
		return resume();
	case ControlCommand::Shutdown:
		return press_power_button();
	case ControlCommand::Quit:
		// QEMU's `quit`: the guest is not asked. A stop, exit 0.
		shutdown_.request(StopReason::UserQuit, "kairos ctl quit on the control socket");
		return control_ok_reply({{"state", "stopping"}});
	case ControlCommand::Reset:
		// As a guest's own reset: Kairos does not restart a guest.
		shutdown_.request(StopReason::Reset, "kairos ctl reset on the control socket");
		return control_ok_reply({{"state", "stopping"}});
	case ControlCommand::RaiseEvent:
		if (!paravirt_)
			return control_error_reply("raise-event: no Kairos device (clock.kairos is false)");
		paravirt_->raise_event(request.port);
		return control_ok_reply({{"port", request.port}});
	}
	return control_error_reply("unknown command");
}

// The DSDT's power button (vmm/acpi.h): a pulse on its GED's IRQ, an
// edge, so each press is one event. What follows is the guest's business:
// the button driver reports KEY_POWER, and a guest that listens (acpid in
// Kairos's image) powers off, which ends the run with exit 0. A guest that
// does not listen runs on (use quit).
std::string Machine::press_power_button()
{
	Status pressed = vm_.set_irq_line(layout::kIrqPowerButton, true);
	if (pressed)
		pressed = vm_.set_irq_line(layout::kIrqPowerButton, false);
	if (!pressed)
		return control_error_reply("shutdown: the power button: " + pressed.error().message);
	event_log_.emit(EventKind::PowerButton, {});
	return control_ok_reply({{"state", run_gate_.closed() ? "paused" : "running"}, {"power_button", "pressed"}});
}

std::string Machine::status_reply() const
{
	auto now = std::chrono::steady_clock::now();
	bool paused = run_gate_.closed();
	auto paused_total = paused_total_ + (paused ? now - paused_at_ : std::chrono::steady_clock::duration{});
	return control_ok_reply({{"state", paused ? "paused" : "running"},
				 {"uptime_ms", ms_of(now - started_)},
				 {"paused_ms", ms_of(paused_total)},
				 {"vcpus", vcpus_.size()},
				 {"vcpus_waiting", run_gate_.waiting()}});
}

// The --stats document as it is now: "state" where the stop's "exit" will
// be, and the vCPU threads' final_* accounts still 0.
std::string Machine::live_stats_reply() const
{
	RunResult running{StopReason::HostError, "", 0};
	nlohmann::json document = stats_document({config_, running, std::chrono::steady_clock::now() - started_,
						  *console_, legacy_->serial().get(), loop_->wakeups(),
						  loop_->timeouts(), pio_bus_, mmio_bus_, vcpus_, paravirt_.get(),
						  legacy_->rtc()->interrupts_raised(), confinement_, virtio_.stats()});
	document.erase("exit");
	document["state"] = run_gate_.closed() ? "paused" : "running";
	return control_ok_reply({{"stats", document}});
}

std::string Machine::pause()
{
	if (!run_gate_.close())
		return control_ok_reply({{"state", "paused"}, {"changed", false}});
	paused_at_ = std::chrono::steady_clock::now();
	if (paravirt_)
		paravirt_->hold_timers();
	// Out of KVM_RUN now; each then waits at the closed gate.
	for (auto &vcpu : vcpus_)
		vcpu->kick();
	event_log_.emit(EventKind::Paused, {{"vcpus", vcpus_.size()}});
	return control_ok_reply({{"state", "paused"}, {"changed", true}});
}

std::string Machine::resume()
{
	if (!run_gate_.closed())
		return control_ok_reply({{"state", "running"}, {"changed", false}});
	auto paused = std::chrono::steady_clock::now() - paused_at_;
	paused_total_ += paused;
	auto paused_ns = static_cast<uint64_t>(std::chrono::nanoseconds(paused).count());
	// Before the gate opens: the guest's first look finds the pause.
	if (paravirt_)
		paravirt_->account_pause(paused_ns);
	run_gate_.open();
	if (paravirt_)
		paravirt_->release_timers();  // delivered to a running guest
	event_log_.emit(EventKind::Resumed, {{"paused_ns", paused_ns}});
	return control_ok_reply({{"state", "running"}, {"changed", true}, {"paused_ms", paused_ns / 1'000'000}});
}

}  // namespace kairos::vmm
