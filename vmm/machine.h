// Machine: one VM, wired from a Config. Owns the KVM VM, guest memory,
// devices, vCPU threads and the event loop, and runs them to a stop.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "base/event_fd.h"
#include "base/logger.h"
#include "base/timer_fd.h"
#include "devices/bus.h"
#include "vmm/config.h"
#include "vmm/confinement.h"
#include "vmm/console.h"
#include "vmm/console_input.h"
#include "vmm/control_socket.h"
#include "vmm/event_log.h"
#include "vmm/event_loop.h"
#include "vmm/guest_areas.h"
#include "vmm/guest_loader.h"
#include "vmm/guest_memory.h"
#include "vmm/kvm.h"
#include "vmm/legacy_devices.h"
#include "vmm/paravirt.h"
#include "vmm/preflight.h"
#include "vmm/run_gate.h"
#include "vmm/shutdown.h"
#include "vmm/stop_sources.h"
#include "vmm/vcpu.h"
#include "vmm/virtio_devices.h"

namespace kairos::vmm {

class Machine {
public:
	// `log` and `event_log` are main's and outlive the machine; every
	// thread reports through them.
	// `prepared`: the memory preflight_and_prepare loaded the guest into,
	// and the drives' images it opened and locked.
	static Result<std::unique_ptr<Machine>> create(const Config &config, PreparedRun prepared, const Logger &log,
						       EventLog &event_log);
	~Machine();

	// Boots the guest and returns when it stops, for whatever reason. Every
	// thread confines itself before it serves the guest (confinement.h).
	RunResult run(const Confinement &confinement);
	// The VM's and each vCPU's descriptor (by id), for Confinement::prepare.
	KvmDescriptors kvm_descriptors() const;
	// Per-VM statistics as JSON text (kairos run --stats).
	std::string stats_json(const RunResult &result) const;
	// kairos ctl: the run's loop serves `socket` (vmm/machine_control.cpp);
	// it must outlive the run.
	Status serve_control(ControlSocket &socket);

private:
	Machine(const Config &config, const Logger &log, EventLog &event_log, VmFd vm, GuestMemory memory,
		Shutdown shutdown);

	Status create_interrupt_controllers();
	Status register_memory();
	Status create_devices();
	// The boot vCPU enters at `entry`; the command line gets its real
	// TSC rate (guest_loader.h).
	Status finish_boot(const BootEntry &entry);
	Status create_vcpus(const Kvm &kvm);
	// The Kairos device: shared info, time publishing, event channels.
	Status create_paravirt_device();
	Status watch_host_events();
	void stop_vcpus();
	// The control socket's requests, on the loop's thread; each returns
	// the reply line (vmm/machine_control.cpp).
	std::string control(const ControlRequest &request);
	std::string status_reply() const;
	std::string live_stats_reply() const;
	std::string press_power_button();
	std::string pause();
	std::string resume();
	void note_panic();
	void mark_panicked(const char *source);

	Config config_;
	const Logger &log_;
	EventLog &event_log_;
	// No Kvm: /dev/kvm is closed once the vCPUs exist (create()).
	VmFd vm_;
	GuestMemory memory_;
	// The pages the guest registers with the Kairos device, and RAM as the
	// virtio devices see it (without those pages).
	GuestAreas areas_;
	Shutdown shutdown_;
	// Before the buses: the Kairos device on the bus refers to it.
	std::unique_ptr<Paravirt> paravirt_;  // null without clock.kairos
	devices::Bus pio_bus_;
	devices::Bus mmio_bus_;
	// After memory_ and the buses, so it goes first: its threads stop
	// while the guest memory they serve is still there.
	VirtioDevices virtio_;
	std::unique_ptr<ConsoleOutput> console_;
	std::optional<LegacyDevices> legacy_;  // COM1, the RTC, ...: set by create_devices
	std::unique_ptr<EventLoop> loop_;
	std::unique_ptr<ConsoleInput> console_input_;  // null without console input
	std::atomic<bool> guest_panicked_{false};
	std::optional<PanicNotice> panic_notice_;
	std::optional<StopSignals> stop_signals_;
	ConfinementRecord confinement_;
	std::chrono::steady_clock::time_point started_;
	std::chrono::steady_clock::time_point stopped_;
	// kairos ctl pause: the vCPUs wait at the gate while it is closed.
	RunGate run_gate_;
	std::chrono::steady_clock::time_point paused_at_;
	std::chrono::steady_clock::duration paused_total_{};
	// Last: vCPU threads stop and join before anything they use goes away.
	std::vector<std::unique_ptr<Vcpu>> vcpus_;
};

}  // namespace kairos::vmm
