#include "vmm/stats.h"

#include <sys/resource.h>

#include <algorithm>

#include "base/clock.h"
#include "base/seccomp.h"
#include "vmm/kvm.h"

namespace kairos::vmm {
namespace {

nlohmann::json lateness_json(const outsourcing::LatenessSummary &summary)
{
	return {{"samples", summary.samples}, {"p50", summary.p50_ns},    {"p90", summary.p90_ns},
		{"p99", summary.p99_ns},      {"p99_9", summary.p999_ns}, {"max", summary.max_ns}};
}

nlohmann::json window_json(const outsourcing::TimerService &service, const outsourcing::WindowConfig &config)
{
	auto w = service.window_stats();
	return {{"policy", service.window_policy()},
		{"configured_policy", outsourcing::to_string(config.policy)},
		{"runtime_ns", config.runtime_ns},
		{"period_ns", config.period_ns},
		{"timeout_ns", config.timeout_ns},
		{"lead_ns", w.lead_ns},
		{"opened", w.opened},
		{"closed_by_guest", w.closed_by_guest},
		{"closed_by_timeout", w.closed_by_timeout},
		{"closed_by_detach", w.closed_by_detach},
		{"closed_by_budget", w.closed_by_budget},
		{"budget_exhausted", w.budget_exhausted},
		{"admission_refusals", w.admission_refusals},
		{"cpu_ns", w.cpu_ns},
		{"open_ns", w.open_ns}};
}

// User plus system CPU time of the whole process (every thread), in ns.
uint64_t process_cpu_ns()
{
	rusage usage{};
	if (getrusage(RUSAGE_SELF, &usage) != 0)
		return 0;
	auto ns = [](const timeval &t) { return timespec_to_ns(timespec{t.tv_sec, t.tv_usec * 1000L}); };
	return ns(usage.ru_utime) + ns(usage.ru_stime);
}

nlohmann::json names(CapabilitySet set)
{
	return set.names();
}

}  // namespace

nlohmann::json security_json(const ConfinementRecord &record, const std::string &kvm_device)
{
	nlohmann::json capabilities = {{"needed", names(record.needed)},
				       {"at_setup", names(record.capabilities.before)},
				       {"bounding_dropped", record.capabilities.bounding_dropped}};
	if (const auto &threads = record.threads_at_start; threads.ok())
		capabilities["threads_at_start"] = {{"threads", threads->threads},
						    {"permitted", names(threads->permitted)}};
	else
		capabilities["threads_at_start"] = {{"error", threads.error().message}};
	if (auto now = capabilities_of_this_thread(); now.ok()) {
		capabilities["effective"] = names(now->effective);
		capabilities["permitted"] = names(now->permitted);
		capabilities["inheritable"] = names(now->inheritable);
		capabilities["ambient"] = names(now->ambient);
		capabilities["bounding"] = names(now->bounding);
	} else {
		capabilities["error"] = now.error().message;
	}
	nlohmann::json security = {{"capabilities", capabilities}};
	// At the stop, scanned rather than remembered: a descriptor opened
	// after setup would show too.
	if (auto open = count_descriptors_of_device(kvm_device); open.ok())
		security["kvm_system_fds"] = *open;
	else
		security["kvm_system_fds"] = open.error().message;
	return security;
}

nlohmann::json drift_json(const std::vector<pvclock::ClockSample> &samples)
{
	auto summary = pvclock::summarise_drift(samples);
	nlohmann::json series = nlohmann::json::array();
	size_t step = std::max<size_t>(1, samples.size() / 1000);
	for (size_t i = 0; i < samples.size(); i += step) {
		double host = static_cast<double>(samples[i].host_ns - samples[0].host_ns);
		double guest = static_cast<double>(static_cast<int64_t>(samples[i].guest_ns - samples[0].guest_ns));
		series.push_back({host / 1e9, (guest - host) / 1e3});
	}
	return {{"samples", summary.samples},
		{"span_s", summary.span_s},
		{"drift_ppm", summary.drift_ppm},
		{"envelope_drift_ppm", summary.envelope_drift_ppm},
		{"realtime_offset_ms", summary.realtime_offset_ms},
		{"end_to_end_us", summary.end_to_end_us},
		{"max_deviation_us", summary.max_deviation_us},
		{"series", series}};
}

std::string stats_json(const StatsSources &sources)
{
	return stats_document(sources).dump(2) + "\n";
}

nlohmann::json stats_document(const StatsSources &in)
{
	const outsourcing::TimerService *timer_service = in.paravirt ? in.paravirt->timer_service() : nullptr;
	nlohmann::json stats;
	stats["exit"] = {
		{"reason", describe(in.result.reason)}, {"detail", in.result.detail}, {"code", in.result.exit_code}};
	stats["runtime_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(in.runtime).count();
	stats["console_bytes"] = in.console.bytes_transmitted();
	// Dropped: what the guest sent that never reached console.output (a
	// reader too slow or gone, the file cap).
	stats["console"] = {{"transmitted_bytes", in.console.bytes_transmitted()},
			    {"dropped_bytes", in.console.bytes_dropped()}};
	if (in.serial) {
		// Each register access is one VM exit: a guest kept busy by host
		// input shows here (issue 12, #10).
		devices::Serial::Stats uart = in.serial->stats();
		stats["console"]["uart"] = {{"register_accesses", uart.register_accesses},
					    {"received_bytes", uart.received_bytes},
					    {"interrupts", uart.interrupts}};
	}
	// Wake-ups of the main loop: timers it serves (clock.refresh_ms,
	// events.virtual_timer_hz), input, console output and signals. It
	// waits with no timeout, so timeouts stays 0 (a tick would count).
	stats["event_loop"] = {{"wakeups", in.loop_wakeups}, {"timeouts", in.loop_timeouts}};
	// Times the CMOS RTC raised IRQ 8 (update, alarm, periodic).
	stats["rtc"] = {{"interrupts", in.rtc_interrupts}};
	stats["unclaimed_port_accesses"] = in.pio_bus.unclaimed_accesses();
	stats["unclaimed_mmio_accesses"] = in.mmio_bus.unclaimed_accesses();
	stats["process_cpu_ns"] = process_cpu_ns();
	// The main thread's Seccomp: field at the stop (2: filter mode, 0:
	// none; security.seccomp), which the guest tests check on every run.
	stats["seccomp"] = seccomp_mode_of_this_process();
	stats["security"] = security_json(in.confinement, kKvmDevicePath);
	nlohmann::json vcpus = nlohmann::json::array();
	std::vector<uint64_t> windows = timer_service ? timer_service->window_raises() : std::vector<uint64_t>{};
	std::vector<uint64_t> refusals = timer_service ? timer_service->window_refusals() : std::vector<uint64_t>{};
	for (const auto &vcpu : in.vcpus)
		vcpus.push_back({{"id", vcpu->id()},
				 {"exits", vcpu->exits()},
				 {"cpu_ns", vcpu->final_cpu_ns()},
				 {"run_delay_ns", vcpu->final_run_delay_ns()},
				 {"preemptions", vcpu->final_preemptions()},
				 {"windows", windows.size() > vcpu->id() ? windows[vcpu->id()] : 0},
				 {"window_refusals", refusals.size() > vcpu->id() ? refusals[vcpu->id()] : 0}});
	stats["vcpus"] = vcpus;
	// Per virtio device (issue 10): requests served, bytes each way,
	// failed requests and malformed chains, queue notifications, and
	// interrupts sent or suppressed (EVENT_IDX, NO_INTERRUPT).
	nlohmann::json devices = nlohmann::json::array();
	for (const auto &device : in.devices)
		devices.push_back({{"id", device.id},
				   {"type", device.type},
				   {"requests", device.stats.requests},
				   {"bytes_read", device.stats.bytes_read},
				   {"bytes_written", device.stats.bytes_written},
				   {"errors", device.stats.errors},
				   {"notifications", device.stats.notifications},
				   {"interrupts", device.stats.interrupts},
				   {"interrupts_suppressed", device.stats.interrupts_suppressed}});
	stats["devices"] = devices;
	if (in.paravirt) {
		const pvclock::EventChannels &events = in.paravirt->events();
		KairosDevice &device = *in.paravirt->device();
		nlohmann::json ports = nlohmann::json::object();
		const std::pair<uint32_t, const char *> named[] = {{KAIROS_EVENT_VIRTUAL_TIMER, "virtual_timer"},
								   {KAIROS_EVENT_CONSOLE, "console"},
								   {KAIROS_EVENT_DEBUG, "debug"},
								   {KAIROS_EVENT_TIMER_EXPIRED, "timer_expired"}};
		for (const auto &[port, name] : named) {
			auto port_stats = events.stats(port);
			ports[name] = {{"port", port},
				       {"raised", port_stats.raised},
				       {"injected", port_stats.injected},
				       {"held_before_registration", port_stats.held}};
		}
		nlohmann::json drift = nlohmann::json::object();
		for (uint32_t tag = 0; tag < KAIROS_SAMPLE_TAGS; ++tag) {
			auto samples = device.clock_samples(tag);
			if (samples.size() >= 2)
				drift[std::to_string(tag)] = drift_json(samples);
		}
		stats["clock_drift"] = drift;
		if (timer_service) {
			auto t = timer_service->stats();
			stats["outsourcing"] = {{"priority", outsourcing::to_string(in.config.outsourcing.priority)},
						{"doorbells", t.doorbells},
						{"acks", t.acks},
						{"guest_wakeups_deferred", t.guest_wakeups_deferred},
						{"requests", t.requests},
						{"polled_requests", t.polled_requests},
						{"adds", t.adds},
						{"mods", t.mods},
						{"dels", t.dels},
						{"expiries", t.expiries},
						{"delivered", t.delivered},
						{"coalesced", t.coalesced},
						{"superseded", t.superseded},
						{"unacked", t.unacked},
						{"errors",
						 {{"bad_op", t.errors_bad_op},
						  {"no_entry", t.errors_no_entry},
						  {"quota", t.errors_quota},
						  {"dropped", t.errors_dropped},
						  {"bad_vcpu", t.errors_bad_vcpu},
						  {"bad_request_indices", t.bad_request_indices},
						  {"bad_completion_indices", t.bad_completion_indices}}},
						{"armed", t.armed},
						{"lateness_ns", lateness_json(t.lateness)},
						{"timer_thread_cpu_ns", timer_service->timer_thread_cpu_ns()},
						{"advance_ns", timer_service->advance_ns()},
						{"window", window_json(*timer_service, in.config.outsourcing.window)},
						{"ack_lateness_ns", lateness_json(t.ack_lateness)},
						{"failure", timer_service->failure()}};
		}
		stats["kairos"] = {{"registrations", device.registrations()},
				   {"commands", device.commands()},
				   {"failed_commands", device.failed_commands()},
				   {"time_publishes", in.paravirt->time().publishes()},
				   {"upcalls", events.upcalls()},
				   {"events", ports}};
	}
	return stats;
}

}  // namespace kairos::vmm
