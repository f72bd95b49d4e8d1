// The --stats document of one run (README "Statistics"): every counter a
// Machine's parts keep, serialised once at the end, after the vCPU and
// timer threads have stopped.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "devices/bus.h"
#include "devices/serial.h"
#include "pvclock/clock_drift.h"
#include "vmm/config.h"
#include "vmm/confinement.h"
#include "vmm/console.h"
#include "vmm/paravirt.h"
#include "vmm/shutdown.h"
#include "vmm/vcpu.h"
#include "vmm/virtio_devices.h"

namespace kairos::vmm {

// What the document is made of. paravirt is null without the Kairos
// device.
struct StatsSources {
	const Config &config;
	const RunResult &result;
	std::chrono::steady_clock::duration runtime;
	const ConsoleOutput &console;
	const devices::Serial *serial;  // null in tests without one
	uint64_t loop_wakeups;
	uint64_t loop_timeouts;  // wake-ups with no event (a tick would count)
	const devices::Bus &pio_bus;
	const devices::Bus &mmio_bus;
	const std::vector<std::unique_ptr<Vcpu>> &vcpus;
	const Paravirt *paravirt;
	uint64_t rtc_interrupts;  // devices::Rtc::interrupts_raised
	const ConfinementRecord &confinement;
	std::vector<VirtioDeviceReport> devices;  // the virtio devices, in slot order
};

// The whole document, pretty-printed, ending with a newline.
std::string stats_json(const StatsSources &sources);
// The same document as JSON (kairos ctl stats builds it while the VM runs).
nlohmann::json stats_document(const StatsSources &sources);

// The "security" object: the capabilities the config needs, had at setup
// and every thread had at the start, the main thread's five sets at the
// stop (read now: call it on the main thread), and how many descriptors of
// kvm_device are still open (0: /dev/kvm closed after setup).
nlohmann::json security_json(const ConfinementRecord &record, const std::string &kvm_device);

// One clock's drift (at least two samples): the summary, plus a series of
// (seconds since the first sample, change of the guest-minus-host offset
// in us) thinned to at most about 1000 points, for plots.
nlohmann::json drift_json(const std::vector<pvclock::ClockSample> &samples);

}  // namespace kairos::vmm
