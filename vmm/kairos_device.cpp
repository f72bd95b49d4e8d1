#include "vmm/kairos_device.h"

#include "base/clock.h"
#include "pvclock/host_clock.h"

#include <time.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace kairos::vmm {
namespace {

const char *command_name(uint32_t command)
{
	switch (command) {
	case KAIROS_CMD_REGISTER_SHARED_INFO:
		return "REGISTER_SHARED_INFO";
	case KAIROS_CMD_UNREGISTER_SHARED_INFO:
		return "UNREGISTER_SHARED_INFO";
	case KAIROS_CMD_REGISTER_RING:
		return "REGISTER_RING";
	case KAIROS_CMD_UNREGISTER_RING:
		return "UNREGISTER_RING";
	case KAIROS_CMD_RAISE_DEBUG:
		return "RAISE_DEBUG";
	case KAIROS_CMD_GUEST_PANIC:
		return "GUEST_PANIC";
	case KAIROS_CMD_REFRESH_TIME:
		return "REFRESH_TIME";
	case KAIROS_CMD_SET_UPCALL_VCPU:
		return "SET_UPCALL_VCPU";
	default:
		return "unknown";
	}
}

const char *status_name(int32_t status)
{
	switch (status) {
	case KAIROS_EINVAL:
		return "EINVAL";
	case KAIROS_ERANGE:
		return "ERANGE";
	case KAIROS_EBUSY:
		return "EBUSY";
	case KAIROS_ENOENT:
		return "ENOENT";
	case KAIROS_ENOSYS:
		return "ENOSYS";
	default:
		return "an unknown status";
	}
}

}  // namespace

KairosDevice::KairosDevice(GuestAreas &areas, uint32_t vcpu_count, pvclock::TimeService &time,
			   pvclock::EventChannels &events, outsourcing::TimerService *timers,
			   std::function<void()> on_guest_panic, const Logger &log, EventLog &event_log)
	: areas_(areas), vcpu_count_(vcpu_count), time_(time), events_(events), timers_(timers),
	  on_guest_panic_(std::move(on_guest_panic)), log_(log), event_log_(event_log)
{
}

KairosDevice::~KairosDevice()
{
	std::lock_guard lock(mutex_);
	unregister_ring();
	unregister_shared_info();
}

void KairosDevice::read(uint64_t offset, std::span<uint8_t> data)
{
	uint32_t value = UINT32_MAX;
	if (offset == KAIROS_PORT_STATUS && data.size() == 4) {
		std::lock_guard lock(mutex_);
		value = static_cast<uint32_t>(status_);
	}
	std::memcpy(data.data(), &value, std::min<size_t>(data.size(), 4));
}

void KairosDevice::write(uint64_t offset, std::span<const uint8_t> data)
{
	// The doorbell and ack ports take any value and width. 4-byte writes
	// never get here: KVM signals their ioeventfds instead.
	if (timers_ && offset == KAIROS_PORT_DOORBELL) {
		timers_->ring_doorbell();
		return;
	}
	if (timers_ && offset == KAIROS_PORT_ACK) {
		timers_->ack();
		return;
	}
	if (timers_ && offset == KAIROS_PORT_DONE) {
		timers_->report_done();
		return;
	}
	// The registers are 32 bits wide; other access sizes are ignored.
	if (data.size() != 4)
		return;
	uint32_t value;
	std::memcpy(&value, data.data(), 4);
	std::lock_guard lock(mutex_);
	switch (offset) {
	case KAIROS_PORT_ARG0:
		arg0_ = value;
		break;
	case KAIROS_PORT_ARG1:
		arg1_ = value;
		break;
	case KAIROS_PORT_SAMPLE_LO:
		sample_low_ = value;
		break;
	case KAIROS_PORT_SAMPLE_HI:
		sample_high_ = value;
		break;
	case KAIROS_PORT_SAMPLE_TAG:
		if (value < KAIROS_SAMPLE_TAGS && samples_[value].size() < kMaxSamplesPerTag) {
			uint64_t host_ns = monotonic_now_ns();
			samples_[value].push_back(
				{host_ns, (uint64_t{sample_high_} << 32) | sample_low_, clock_now_ns(CLOCK_REALTIME)});
		}
		break;
	case KAIROS_PORT_COMMAND:
		++commands_;
		failure_detail_.clear();
		status_ = execute(value);
		if (status_ != KAIROS_OK) {
			++failed_commands_;
			log_failure(value, status_);
		}
		break;
	default:
		break;
	}
}

void KairosDevice::log_failure(uint32_t command, int32_t status)
{
	size_t index = std::min<uint32_t>(command, 15) * 8 + std::min<uint32_t>(static_cast<uint32_t>(-status), 7);
	// The first of each kind is a warning; the rest only at debug, which
	// a user chooses knowing a guest may flood it.
	LogLevel level = logged_failures_.test(index) ? LogLevel::Debug : LogLevel::Warn;
	if (!log_.shows(level))
		return;
	logged_failures_.set(index);
	log_.write(level, fmt::format("guest command {} {} (arg0 {:#x}, arg1 {:#x}) failed with {}{}{}{}", command,
				      command_name(command), arg0_, arg1_, status_name(status),
				      failure_detail_.empty() ? "" : ": ", failure_detail_,
				      log_.shows(LogLevel::Debug) ? "" : "; later ones are only counted"));
}

std::vector<pvclock::ClockSample> KairosDevice::clock_samples(uint32_t tag)
{
	std::lock_guard lock(mutex_);
	return tag < KAIROS_SAMPLE_TAGS ? samples_[tag] : std::vector<pvclock::ClockSample>{};
}

size_t KairosDevice::clock_sample_count(uint32_t tag)
{
	std::lock_guard lock(mutex_);
	return tag < KAIROS_SAMPLE_TAGS ? samples_[tag].size() : 0;
}

int32_t KairosDevice::execute(uint32_t command)
{
	switch (command) {
	case KAIROS_CMD_REGISTER_SHARED_INFO:
		return register_shared_info(arg0_);
	case KAIROS_CMD_UNREGISTER_SHARED_INFO:
		return reported(unregister_shared_info(), EventKind::SharedInfoUnregistered);
	case KAIROS_CMD_REGISTER_RING:
		return register_ring(arg0_, arg1_);
	case KAIROS_CMD_UNREGISTER_RING:
		return reported(unregister_ring(), EventKind::RingUnregistered);
	case KAIROS_CMD_RAISE_DEBUG:
		events_.raise(KAIROS_EVENT_DEBUG);
		return KAIROS_OK;
	case KAIROS_CMD_GUEST_PANIC:
		on_guest_panic_();
		return KAIROS_OK;
	case KAIROS_CMD_REFRESH_TIME:
		time_.publish_time();
		return KAIROS_OK;
	case KAIROS_CMD_SET_UPCALL_VCPU:
		// Kairos gives vCPU i the APIC id i (vmm/cpuid), so the id is
		// the index; anything else is refused.
		if (!timers_)
			return KAIROS_ENOSYS;
		return timers_->set_upcall_vcpu(arg0_) ? KAIROS_OK : KAIROS_EINVAL;
	default:
		return KAIROS_ENOSYS;
	}
}

int32_t KairosDevice::register_shared_info(uint64_t pfn)
{
	// A failed command changes nothing: the new page is validated (and
	// takes the old one's place in the areas) before the old one goes.
	std::span<uint8_t> page;
	int32_t status = areas_.add(GuestArea::SharedInfo, pfn, 1, &page);
	if (status != KAIROS_OK)
		return status;
	// A reload registers a new page: let go of the old one before the
	// new one is written, so nothing writes to a page the guest freed.
	events_.detach();
	time_.detach();
	shared_info_ = std::make_unique<pvclock::SharedInfo>(page, vcpu_count_);
	shared_info_->initialise();
	time_.attach(shared_info_.get());
	events_.attach(shared_info_.get());
	++registrations_;
	log_.info("the guest registered its shared-info page at {:#x}", pfn * KAIROS_PAGE_SIZE);
	event_log_.emit(EventKind::SharedInfoRegistered, {{"gpa", pfn * KAIROS_PAGE_SIZE}});
	return KAIROS_OK;
}

int32_t KairosDevice::register_ring(uint64_t pfn, uint64_t pages)
{
	if (!timers_)
		return KAIROS_ENOSYS;  // outsourcing is off for this VM
	if (pages != KAIROS_RING_PAGES)
		return KAIROS_EINVAL;
	// Validated first, so a refused ring leaves the old one working.
	bool replacing = areas_.registered(GuestArea::Ring);
	std::span<uint8_t> area;
	int32_t status = areas_.add(GuestArea::Ring, pfn, pages, &area);
	if (status != KAIROS_OK)
		return status;
	if (replacing)
		timers_->detach();  // returns once the timer thread lets go of it
	if (auto attached = timers_->attach(area); !attached) {
		failure_detail_ = attached.error().message;
		areas_.remove(GuestArea::Ring);
		return KAIROS_EINVAL;
	}
	log_.info("the guest registered its timer ring ({} pages at {:#x})", pages, pfn * KAIROS_PAGE_SIZE);
	event_log_.emit(EventKind::RingRegistered, {{"gpa", pfn * KAIROS_PAGE_SIZE}, {"pages", pages}});
	return KAIROS_OK;
}

// Not in unregister_*: the destructor calls those at the stop, which the
// guest did not ask for.
int32_t KairosDevice::reported(int32_t status, EventKind kind)
{
	if (status == KAIROS_OK)
		event_log_.emit(kind);
	return status;
}

int32_t KairosDevice::unregister_ring()
{
	if (!timers_ || !areas_.registered(GuestArea::Ring))
		return KAIROS_ENOENT;
	// detach() returns once the timer thread no longer touches the pages.
	timers_->detach();
	return areas_.remove(GuestArea::Ring);
}

int32_t KairosDevice::unregister_shared_info()
{
	if (!shared_info_)
		return KAIROS_ENOENT;
	events_.detach();
	time_.detach();
	shared_info_.reset();
	return areas_.remove(GuestArea::SharedInfo);
}

}  // namespace kairos::vmm
