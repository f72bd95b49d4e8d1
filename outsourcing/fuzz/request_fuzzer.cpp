// libFuzzer target: arbitrary bytes as a guest's ring area and as a guest's
// behaviour, through RequestConsumer, parse_request, TimerHeap and the whole
// TimerEngine. Besides what the sanitizers catch, it checks invariants the
// host must keep whatever the guest does, and traps when one breaks.
//
// Input: byte 0 picks the mode.
//  - even: raw. The rest is copied over the ring area (header and request
//    page, zero-padded); one drain goes through parse_request into a heap,
//    which must then pop in deadline order; then the engine runs on the
//    same bytes.
//  - odd: scripted. A small program of guest actions (post, doorbell,
//    timer, consume, ack, garbage indices, detach, time jumps) runs against
//    a TimerEngine with a small quota.
#include <cstdint>
#include <cstring>
#include <span>
#include <unordered_map>
#include <vector>

#include "outsourcing/guest_ring.h"
#include "outsourcing/request_parser.h"
#include "outsourcing/ring.h"
#include "outsourcing/timer_engine.h"
#include "outsourcing/timer_heap.h"
#include "test/fuzz/fuzz_check.h"

using namespace kairos::outsourcing;

namespace {

struct Input {
	const uint8_t *data;
	size_t size;

	bool empty() const { return size == 0; }
	template <typename T>
	T take()
	{
		T value{};
		size_t count = size < sizeof(T) ? size : sizeof(T);
		std::memcpy(&value, data, count);
		data += count;
		size -= count;
		return value;
	}
};

alignas(4096) uint8_t g_area[kRingAreaSize];

std::span<uint8_t> area()
{
	return {g_area, kRingAreaSize};
}

kairos_ring_header &header()
{
	return *reinterpret_cast<kairos_ring_header *>(g_area);
}

// What the host must hold to, whatever the guest did.
void check_engine(const TimerEngine &engine)
{
	TimerStats stats = engine.counters();
	FUZZ_CHECK(engine.outstanding() <= engine.max_timers());
	FUZZ_CHECK(stats.armed + stats.held_expiries == engine.outstanding());
	FUZZ_CHECK(stats.held - stats.held_expiries <= TimerEngine::kMaxHeldErrors);
	// Every expiry is delivered, held, superseded by the guest or dropped
	// with the ring: never lost, never counted twice.
	FUZZ_CHECK(stats.expiries == stats.delivered + stats.held_expiries + stats.superseded + stats.discarded);
	FUZZ_CHECK(stats.lateness.samples == stats.expiries);
	FUZZ_CHECK(engine.next_deadline().has_value() == (stats.armed > 0));
	// Host memory a guest can drive stays bounded, acks or not (issue 12, #1).
	FUZZ_CHECK(engine.awaiting_ack() <= TimerEngine::kMaxAwaitingAck);
}

// Once per input: the full stats() agree with counters(), and the
// percentiles are ordered. (check_engine reads counters(): the fuzzer spent
// most of its time in the histogram walks of stats().)
void check_lateness(const TimerEngine &engine)
{
	TimerStats full = engine.stats();
	TimerStats cheap = engine.counters();
	FUZZ_CHECK(full.expiries == cheap.expiries && full.delivered == cheap.delivered);
	for (const LatenessSummary *summary : {&full.lateness, &full.ack_lateness}) {
		FUZZ_CHECK(summary->p50_ns <= summary->p90_ns && summary->p90_ns <= summary->p99_ns);
		FUZZ_CHECK(summary->p99_ns <= summary->p999_ns && summary->p999_ns <= summary->max_ns);
	}
	FUZZ_CHECK(full.lateness.samples == cheap.lateness.samples && full.lateness.max_ns == cheap.lateness.max_ns);
}

void run_raw(Input input)
{
	std::memset(g_area, 0, sizeof(g_area));
	size_t quota = 1 + input.take<uint8_t>() % 64;
	uint64_t now = input.take<uint64_t>();
	std::memcpy(g_area, input.data, input.size < sizeof(g_area) ? input.size : sizeof(g_area));

	// RequestConsumer -> parse_request -> TimerHeap, by hand.
	{
		RequestConsumer consumer(area());
		std::array<kairos_timer_request, KAIROS_RING_REQUESTS> batch;
		DrainResult drained = consumer.drain(batch);
		FUZZ_CHECK(drained.count <= KAIROS_RING_REQUESTS);
		FUZZ_CHECK(!drained.bad_producer || drained.count == 0);
		TimerHeap heap(quota);
		for (uint32_t i = 0; i < drained.count; ++i) {
			ParsedRequest parsed = parse_request(batch[i], heap);
			if (const auto *action = std::get_if<TimerAction>(&parsed)) {
				if (action->kind == TimerAction::Kind::Arm)
					FUZZ_CHECK(heap.arm(action->timer_id, action->deadline_ns) !=
						   TimerHeap::ArmResult::OverQuota);
				else
					FUZZ_CHECK(heap.cancel(action->timer_id));
			} else {
				const auto &error = std::get<kairos_timer_completion>(parsed);
				FUZZ_CHECK(error.kind == KAIROS_COMPLETION_ERROR);
				FUZZ_CHECK(error.result == KAIROS_TIMER_EBADOP || error.result == KAIROS_TIMER_ENOENT ||
					   error.result == KAIROS_TIMER_EQUOTA);
			}
			FUZZ_CHECK(heap.size() <= quota);
		}
		uint64_t last = 0;
		size_t before = heap.size();
		size_t popped = heap.pop_expired(UINT64_MAX, [&](uint32_t id, uint64_t deadline) {
			FUZZ_CHECK(deadline >= last);
			FUZZ_CHECK(!heap.contains(id));
			last = deadline;
		});
		FUZZ_CHECK(popped == before && heap.empty());
	}

	// The engine on the same bytes.
	TimerEngine engine(quota);
	FUZZ_CHECK(engine.attach(area()).ok());
	engine.process(now, {true, false, false});
	check_engine(engine);
	engine.process(now, {false, true, true});
	check_engine(engine);
	engine.process(UINT64_MAX, {true, true, true});
	check_engine(engine);
	FUZZ_CHECK(engine.counters().armed == 0);
	check_lateness(engine);
}

void run_script(Input input)
{
	size_t quota = 1 + input.take<uint8_t>() % 64;
	uint32_t first_request = input.take<uint32_t>();
	uint32_t first_completion = input.take<uint32_t>();
	uint64_t now = input.take<uint32_t>();

	GuestRing::initialise(area(), 0);
	header().request_producer = header().request_consumer = first_request;
	header().completion_producer = header().completion_consumer = first_completion;
	TimerEngine engine(quota);
	FUZZ_CHECK(engine.attach(area()).ok());
	GuestRing guest(area());

	// While the guest follows the protocol, the host may deliver an id's
	// expiry at most as often as the guest armed it, and must never run
	// the completion producer more than a ring ahead of the guest.
	bool honest = true;
	std::unordered_map<uint32_t, uint64_t> arms;
	std::unordered_map<uint32_t, uint64_t> expiries;
	std::vector<kairos_timer_completion> seen;
	auto consume = [&](size_t max) {
		seen.clear();
		guest.take(seen, max);
		for (const kairos_timer_completion &completion : seen) {
			if (completion.kind != KAIROS_COMPLETION_EXPIRED)
				continue;
			++expiries[completion.timer_id];
			if (honest)
				FUZZ_CHECK(expiries[completion.timer_id] <= arms[completion.timer_id]);
		}
	};
	auto check_ring = [&] {
		if (honest)
			FUZZ_CHECK(header().completion_producer - guest.completion_consumer() <=
				   KAIROS_RING_COMPLETIONS);
		check_engine(engine);
	};

	while (!input.empty()) {
		switch (input.take<uint8_t>() % 10) {
		case 0: {  // post a request
			uint8_t shape = input.take<uint8_t>();
			kairos_timer_request request{};
			request.op = static_cast<__u16>(shape & 0x80 ? input.take<uint16_t>() : shape % 4);
			request.vcpu = shape & 0x20 ? input.take<uint16_t>() : KAIROS_VCPU_ANY;
			request.timer_id = shape & 0x40 ? input.take<uint32_t>() : input.take<uint8_t>() % 16;
			switch ((shape >> 2) % 4) {
			case 0:
				request.deadline_ns = 0;
				break;
			case 1:
				request.deadline_ns = UINT64_MAX - input.take<uint8_t>();
				break;
			case 2:
				request.deadline_ns = now + input.take<uint16_t>();
				break;
			default:
				request.deadline_ns = input.take<uint64_t>();
				break;
			}
			if (guest.post(request) && (request.op == KAIROS_TIMER_ADD || request.op == KAIROS_TIMER_MOD))
				++arms[request.timer_id];
			break;
		}
		case 1:
			now += input.take<uint16_t>();
			engine.process(now, {true, false, false});
			break;
		case 2:
			now += input.take<uint16_t>();
			engine.process(now, {false, false, true});
			break;
		case 3:
			consume(input.take<uint16_t>());
			break;
		case 4:
			engine.process(now, {false, true, false});
			break;
		case 5:  // a guest that writes a garbage request producer
			honest = false;
			header().request_producer = input.take<uint32_t>();
			break;
		case 6:  // ... or completion consumer
			honest = false;
			header().completion_consumer = input.take<uint32_t>();
			break;
		case 7: {  // ... or scribbles on what the host owns
			honest = false;
			uint32_t value = input.take<uint32_t>();
			switch (value % 3) {
			case 0:
				header().request_consumer = value;
				break;
			case 1:
				header().completion_producer = value;
				break;
			default:
				header().host_polling = value;
				break;
			}
			break;
		}
		case 8:  // unregister and register again
			engine.detach();
			check_engine(engine);
			FUZZ_CHECK(engine.attach(area()).ok());
			break;
		case 9:  // any time at all, even backwards
			now = input.take<uint64_t>();
			engine.process(now, {true, true, true});
			break;
		}
		check_ring();
	}

	// The guest behaves from here on: every timer fires and every held
	// completion reaches it.
	header().request_producer = guest.request_producer();
	header().completion_consumer = guest.completion_consumer();
	for (int round = 0; round < 1000; ++round) {
		consume(SIZE_MAX);
		engine.process(UINT64_MAX, {true, true, true});
		check_ring();
		TimerStats stats = engine.counters();
		if (stats.held == 0 && stats.armed == 0 && guest.completions_available() == 0)
			break;
	}
	TimerStats stats = engine.counters();
	// A host that adopted garbage indices may be stuck; an honest one never is.
	if (honest) {
		FUZZ_CHECK(stats.held == 0);
		FUZZ_CHECK(stats.armed == 0);
	}
	check_engine(engine);
	check_lateness(engine);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Input input{data, size};
	if (input.take<uint8_t>() % 2 == 0)
		run_raw(input);
	else
		run_script(input);
	return 0;
}
