// vmrpc-throughput: how many timer requests per second the host side of
// VMRPC processes, by batch size (requests per doorbell), and what an
// expiry costs, measured in one process on plain memory: a guest-role
// producer (GuestRing) and the host engine (TimerEngine), no VM, no KVM
// exits. It bounds what the ring and the timer heap can do; end-to-end
// figures through a guest come from the outsourced-timers test's stats.
// Prints a table and JSON; asserts nothing.
//
// usage: vmrpc-throughput [--requests N] [--json FILE]
#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "outsourcing/guest_ring.h"
#include "outsourcing/timer_engine.h"

using namespace kairos::outsourcing;

namespace {

using Clock = std::chrono::steady_clock;

struct Result {
	size_t batch;
	double requests_per_s;
	double ns_per_request;
};

// A zeroed ring area as the guest registers it, the guest's view of it and
// an engine attached to it (room for a million timers), as the VMM has them.
struct Rig {
	alignas(4096) std::array<uint8_t, kRingAreaSize> area{};
	std::optional<GuestRing> guest;
	TimerEngine engine{1 << 20};

	Rig()
	{
		GuestRing::initialise(area);
		guest.emplace(std::span<uint8_t>(area));
		(void)engine.attach(area);
	}
};

// Arms and cancels timers far in the future (so nothing expires): each
// doorbell carries `batch` requests.
Result measure_requests(size_t batch, size_t total)
{
	auto rig = std::make_unique<Rig>();
	GuestRing &guest = *rig->guest;
	TimerEngine &engine = rig->engine;

	std::vector<kairos_timer_request> requests(batch);
	std::mt19937_64 random(42);
	const uint64_t now = 1'000'000'000ULL;
	std::vector<kairos_timer_completion> drained;
	auto start = Clock::now();
	for (size_t done = 0; done < total; done += batch) {
		for (size_t i = 0; i < batch; ++i) {
			uint32_t id = static_cast<uint32_t>((done + i) % 50000);
			bool cancel = (done + i) % 3 == 2;
			requests[i] = make_request(cancel ? uint32_t{KAIROS_TIMER_DEL} : uint32_t{KAIROS_TIMER_ADD}, id,
						   now + 3'600'000'000'000ULL + random() % 1'000'000'000ULL);
		}
		guest.post(requests);
		engine.process(now, {.doorbell = true});
		guest.take(drained);  // error completions (DEL of an id not armed)
		drained.clear();
	}
	double seconds = std::chrono::duration<double>(Clock::now() - start).count();
	return {batch, static_cast<double>(total) / seconds, seconds * 1e9 / static_cast<double>(total)};
}

// ADD `count` timers due at once, then one timer pass fires them all and
// the guest drains the completions in ring-sized bites.
double measure_expiry_ns(size_t count)
{
	auto rig = std::make_unique<Rig>();
	GuestRing &guest = *rig->guest;
	TimerEngine &engine = rig->engine;
	std::vector<kairos_timer_request> batch;
	for (size_t i = 0; i < count; ++i) {
		batch.push_back(make_request(KAIROS_TIMER_ADD, static_cast<uint32_t>(i), 2'000'000'000ULL + i));
		if (batch.size() == KAIROS_RING_REQUESTS || i + 1 == count) {
			guest.post(batch);
			engine.process(1'000'000'000ULL, {.doorbell = true});
			batch.clear();
		}
	}
	std::vector<kairos_timer_completion> drained;
	auto start = Clock::now();
	engine.process(3'000'000'000ULL, {.timer = true});
	size_t got = 0;
	while (got < count) {
		got += guest.take(drained);
		drained.clear();
		engine.process(3'000'000'000ULL, {.ack = true});
	}
	return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / static_cast<double>(count);
}

constexpr const char *kUsage = "usage: vmrpc-throughput [--requests N] [--json FILE]\n"
			       "\n"
			       "Requests per second through the VMRPC ring and timer engine in one\n"
			       "process (no VM), by requests per doorbell, and the cost of an expiry.\n"
			       "--requests N: requests per batch size (default 2000000, 1..1000000000).\n";

// A whole number in [1, 1e9], or nullopt.
std::optional<size_t> parse_count(const std::string &text)
{
	size_t value = 0;
	auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
	if (error != std::errc() || end != text.data() + text.size() || value < 1 || value > 1'000'000'000)
		return std::nullopt;
	return value;
}

int usage_error(const std::string &message)
{
	fmt::print(stderr, "vmrpc-throughput: {}\n{}", message, kUsage);
	return 2;
}

}  // namespace

int main(int argc, char **argv)
{
	size_t total = 2'000'000;
	std::string json_path;
	for (int i = 1; i < argc; ++i) {
		std::string arg = argv[i];
		if (arg == "--help" || arg == "-h") {
			fmt::print("{}", kUsage);
			return 0;
		}
		if (arg != "--requests" && arg != "--json")
			return usage_error(fmt::format("unknown argument '{}'", arg));
		if (i + 1 >= argc)
			return usage_error(fmt::format("{} needs a value", arg));
		std::string value = argv[++i];
		if (arg == "--json") {
			json_path = value;
			continue;
		}
		auto count = parse_count(value);
		if (!count)
			return usage_error(
				fmt::format("--requests: must be a whole number 1..1000000000, got '{}'", value));
		total = *count;
	}
	std::vector<Result> results;
	for (size_t batch : {1, 8, 32, 128, 256})
		results.push_back(measure_requests(batch, total));
	double expiry_ns = measure_expiry_ns(100'000);

	const double base = results.front().requests_per_s;
	fmt::print("{:>14} {:>16} {:>14} {:>18}\n", "batch/doorbell", "requests/s", "ns/request", "vs batch of 1");
	nlohmann::json json = {{"requests_per_batch_size", total}, {"results", nlohmann::json::array()}};
	for (const auto &r : results) {
		fmt::print("{:>14} {:>16.0f} {:>14.1f} {:>18.2f}\n", r.batch, r.requests_per_s, r.ns_per_request,
			   r.requests_per_s / base);
		json["results"].push_back({{"batch", r.batch},
					   {"requests_per_s", r.requests_per_s},
					   {"ns_per_request", r.ns_per_request},
					   {"ratio_vs_batch_1", r.requests_per_s / base}});
	}
	fmt::print("expiry (heap pop + completion + guest take), 100k timers: {:.1f} ns each\n", expiry_ns);
	json["expiry_ns_each"] = expiry_ns;
	std::string text = json.dump(2) + "\n";
	if (!json_path.empty())
		std::ofstream(json_path) << text;
	else
		fmt::print("{}", text);
	return 0;
}
