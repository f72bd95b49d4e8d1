// KairosDevice: the command ports of the Kairos paravirtual device (see
// kairos_abi.h): registration of the shared-info page, debug events, the
// guest's panic notice and time refresh requests.
#pragma once

#include <array>
#include <bitset>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "base/logger.h"
#include "devices/bus.h"
#include "outsourcing/timer_service.h"
#include "pvclock/clock_drift.h"
#include "pvclock/event_channels.h"
#include "pvclock/shared_info.h"
#include "pvclock/time_service.h"
#include "vmm/event_log.h"
#include "vmm/guest_areas.h"

namespace kairos::vmm {

class KairosDevice : public devices::BusDevice {
public:
	// timers may be null: outsourcing is off, ring registration fails.
	// `log` gets the registrations (info) and the first failure of each
	// (command, status) with its arguments and why (warning); a guest
	// retrying a failing command cannot flood it: later ones are only
	// counted, or logged at debug. `event_log` gets each registration
	// and the guest's own unregistrations (--events); both outlive this.
	KairosDevice(GuestAreas &areas, uint32_t vcpu_count, pvclock::TimeService &time, pvclock::EventChannels &events,
		     outsourcing::TimerService *timers, std::function<void()> on_guest_panic, const Logger &log,
		     EventLog &event_log);
	~KairosDevice() override;

	std::string name() const override { return "kairos"; }
	void read(uint64_t offset, std::span<uint8_t> data) override;
	void write(uint64_t offset, std::span<const uint8_t> data) override;

	uint64_t commands() const { return commands_; }
	uint64_t failed_commands() const { return failed_commands_; }
	uint64_t registrations() const { return registrations_; }
	// Clock samples the guest sent under `tag` (see KAIROS_PORT_SAMPLE_*).
	std::vector<pvclock::ClockSample> clock_samples(uint32_t tag);
	// How many, without the copy (0 for a tag out of range).
	size_t clock_sample_count(uint32_t tag);

	static constexpr size_t kMaxSamplesPerTag = 100000;

private:
	int32_t execute(uint32_t command);
	int32_t register_shared_info(uint64_t pfn);
	int32_t unregister_shared_info();
	int32_t register_ring(uint64_t pfn, uint64_t pages);
	int32_t unregister_ring();
	void log_failure(uint32_t command, int32_t status);
	// status, after an event of `kind` if it is KAIROS_OK.
	int32_t reported(int32_t status, EventKind kind);

	GuestAreas &areas_;
	uint32_t vcpu_count_;
	pvclock::TimeService &time_;
	pvclock::EventChannels &events_;
	outsourcing::TimerService *timers_;
	std::function<void()> on_guest_panic_;
	const Logger &log_;
	EventLog &event_log_;

	std::mutex mutex_;
	uint32_t arg0_ = 0;
	uint32_t arg1_ = 0;
	int32_t status_ = KAIROS_OK;
	std::unique_ptr<pvclock::SharedInfo> shared_info_;
	uint64_t commands_ = 0;
	uint64_t failed_commands_ = 0;
	uint64_t registrations_ = 0;
	std::string failure_detail_;  // why the current command failed, if known
	// (command < 16) x (-status < 8): whether that failure was logged.
	std::bitset<16 * 8> logged_failures_;
	uint32_t sample_low_ = 0;
	uint32_t sample_high_ = 0;
	std::array<std::vector<pvclock::ClockSample>, KAIROS_SAMPLE_TAGS> samples_;
};

}  // namespace kairos::vmm
