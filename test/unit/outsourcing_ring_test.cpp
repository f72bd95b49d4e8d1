#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "outsourcing/guest_ring.h"
#include "outsourcing/ring.h"

using namespace kairos::outsourcing;

namespace {

struct Area {
	alignas(4096) std::array<uint8_t, kRingAreaSize> bytes{};
	std::span<uint8_t> span() { return bytes; }
	kairos_ring_header &header() { return *reinterpret_cast<kairos_ring_header *>(bytes.data()); }
	kairos_timer_completion completion_slot(uint32_t index)
	{
		kairos_timer_completion completion;
		std::memcpy(&completion,
			    bytes.data() + kCompletionsOffset + (index % KAIROS_RING_COMPLETIONS) * sizeof(completion),
			    sizeof(completion));
		return completion;
	}
};

kairos_timer_request request(uint32_t id, uint64_t deadline = 1000, uint32_t op = KAIROS_TIMER_ADD)
{
	return make_request(op, id, deadline);
}

kairos_timer_completion expired(uint32_t id, uint64_t time)
{
	kairos_timer_completion completion{};
	completion.timer_id = id;
	completion.kind = KAIROS_COMPLETION_EXPIRED;
	completion.time_ns = time;
	return completion;
}

using Batch = std::array<kairos_timer_request, KAIROS_RING_REQUESTS>;

}  // namespace

TEST_CASE("the ring area must be big enough and aligned", "[outsourcing][ring]")
{
	Area area;
	CHECK(ring_area_usable(area.span()));
	CHECK_FALSE(ring_area_usable(area.span().first(kRingAreaSize - 1)));
	CHECK_FALSE(ring_area_usable(area.span().subspan(1, kRingAreaSize - 1)));
}

TEST_CASE("requests are copied out in order and consumed, across the 32-bit wrap", "[outsourcing][ring]")
{
	Area area;
	uint32_t first = UINT32_MAX - 5;
	GuestRing::initialise(area.span(), first);
	GuestRing guest(area.span());
	RequestConsumer host(area.span());
	REQUIRE(host.consumer() == first);

	std::vector<kairos_timer_request> posted;
	for (uint32_t id = 0; id < 12; ++id)
		posted.push_back(request(id, 100 + id));
	REQUIRE(guest.post(posted) == 12);
	CHECK(area.header().request_producer == first + 12);  // wrapped to 6

	Batch batch;
	DrainResult drained = host.drain(batch);
	CHECK_FALSE(drained.bad_producer);
	REQUIRE(drained.count == 12);
	for (uint32_t i = 0; i < 12; ++i) {
		CHECK(batch[i].timer_id == i);
		CHECK(batch[i].deadline_ns == 100 + i);
	}
	CHECK(area.header().request_consumer == 6u);
	CHECK(host.consumer() == 6u);
	CHECK(guest.request_space() == KAIROS_RING_REQUESTS);

	// Nothing new: an empty drain.
	CHECK(host.drain(batch).count == 0);
}

TEST_CASE("one drain takes a full request ring; a full ring refuses the guest's next request", "[outsourcing][ring]")
{
	Area area;
	GuestRing::initialise(area.span(), UINT32_MAX - 100);
	GuestRing guest(area.span());
	RequestConsumer host(area.span());

	std::vector<kairos_timer_request> posted;
	for (uint32_t id = 0; id < KAIROS_RING_REQUESTS + 10; ++id)
		posted.push_back(request(id));
	CHECK(guest.post(posted) == KAIROS_RING_REQUESTS);
	CHECK(guest.request_space() == 0);
	CHECK_FALSE(guest.post(request(999)));

	Batch batch;
	DrainResult drained = host.drain(batch);
	CHECK_FALSE(drained.bad_producer);
	REQUIRE(drained.count == KAIROS_RING_REQUESTS);
	for (uint32_t i = 0; i < KAIROS_RING_REQUESTS; ++i)
		CHECK(batch[i].timer_id == i);
	CHECK(guest.request_space() == KAIROS_RING_REQUESTS);
	CHECK(guest.post(request(999)));
	REQUIRE(host.drain(batch).count == 1);
	CHECK(batch[0].timer_id == 999u);
	CHECK(host.bad_indices() == 0);
}

TEST_CASE("a producer index the guest could not have reached consumes nothing and is counted", "[outsourcing][ring]")
{
	Area area;
	GuestRing::initialise(area.span(), 10);
	RequestConsumer host(area.span());
	Batch batch;

	SECTION("far ahead")
	{
		area.header().request_producer = 10 + KAIROS_RING_REQUESTS + 1;
	}
	SECTION("behind the consumer")
	{
		area.header().request_producer = 9;
	}
	SECTION("arbitrary")
	{
		area.header().request_producer = 0x80000000u;
	}
	DrainResult drained = host.drain(batch);
	CHECK(drained.bad_producer);
	CHECK(drained.count == 0);
	CHECK(host.consumer() == 10u);
	CHECK(area.header().request_consumer == 10u);
	CHECK(host.drain(batch).bad_producer);
	CHECK(host.bad_indices() == 2);

	// Exactly a full ring ahead is fine; the guest recovers by fixing it.
	area.header().request_producer = 10 + KAIROS_RING_REQUESTS;
	DrainResult recovered = host.drain(batch);
	CHECK_FALSE(recovered.bad_producer);
	CHECK(recovered.count == KAIROS_RING_REQUESTS);
}

TEST_CASE("the host keeps its own indices: guest writes to them change nothing", "[outsourcing][ring]")
{
	Area area;
	GuestRing::initialise(area.span(), 0);
	GuestRing guest(area.span());
	RequestConsumer requests(area.span());
	CompletionProducer completions(area.span());

	REQUIRE(guest.post(request(1)));
	area.header().request_consumer = 12345;   // scribbled by the guest
	area.header().completion_producer = 777;  // likewise
	Batch batch;
	REQUIRE(requests.drain(batch).count == 1);
	CHECK(area.header().request_consumer == 1u);  // rewritten from the host's copy
	kairos_timer_completion one = expired(1, 5);
	REQUIRE(completions.push({&one, 1}) == 1);
	CHECK(area.header().completion_producer == 1u);
}

TEST_CASE("a request is read once: changing the slot after the drain changes nothing", "[outsourcing][ring]")
{
	Area area;
	GuestRing::initialise(area.span(), 0);
	GuestRing guest(area.span());
	RequestConsumer host(area.span());
	REQUIRE(guest.post(request(7, 42)));
	Batch batch;
	REQUIRE(host.drain(batch).count == 1);
	std::memset(area.bytes.data() + kRequestsOffset, 0xff, sizeof(kairos_timer_request));
	CHECK(batch[0].timer_id == 7u);
	CHECK(batch[0].deadline_ns == 42u);
}

TEST_CASE("the completion ring fills at KAIROS_RING_COMPLETIONS and frees what the guest consumed",
	  "[outsourcing][ring]")
{
	Area area;
	uint32_t first = UINT32_MAX - 3;
	GuestRing::initialise(area.span(), first);
	GuestRing guest(area.span());
	CompletionProducer host(area.span());

	CHECK(host.space() == KAIROS_RING_COMPLETIONS);
	std::vector<kairos_timer_completion> many;
	for (uint32_t id = 0; id < KAIROS_RING_COMPLETIONS + 5; ++id)
		many.push_back(expired(id, id));
	CHECK(host.push(many) == KAIROS_RING_COMPLETIONS);
	CHECK(host.space() == 0);
	CHECK_FALSE(host.stage(expired(1000, 0)));
	CHECK(host.bad_indices() == 0);  // full is not an error
	CHECK(area.header().completion_producer == first + KAIROS_RING_COMPLETIONS);

	std::vector<kairos_timer_completion> seen;
	CHECK(guest.take(seen, 100) == 100);
	CHECK(host.space() == 100);
	CHECK(host.push(std::span(many).subspan(KAIROS_RING_COMPLETIONS, 5)) == 5);
	CHECK(guest.take(seen) == KAIROS_RING_COMPLETIONS - 100 + 5);
	REQUIRE(seen.size() == many.size());
	for (size_t i = 0; i < many.size(); ++i)
		CHECK(seen[i].timer_id == many[i].timer_id);
}

TEST_CASE("staged completions are invisible until published", "[outsourcing][ring]")
{
	Area area;
	GuestRing::initialise(area.span(), 0);
	GuestRing guest(area.span());
	CompletionProducer host(area.span());
	host.space();
	REQUIRE(host.stage(expired(1, 1)));
	REQUIRE(host.stage(expired(2, 2)));
	CHECK(guest.completions_available() == 0);
	host.publish();
	CHECK(guest.completions_available() == 2);
	CHECK(area.completion_slot(1).timer_id == 2u);
}

TEST_CASE("a nonsensical completion consumer means a full ring and a counted error, never space", "[outsourcing][ring]")
{
	Area area;
	GuestRing::initialise(area.span(), 1000);
	CompletionProducer host(area.span());
	kairos_timer_completion one = expired(1, 1);
	REQUIRE(host.push({&one, 1}) == 1);  // producer 1001

	SECTION("consumer ahead of the producer")
	{
		area.header().completion_consumer = 1002;
	}
	SECTION("consumer more than a ring behind")
	{
		area.header().completion_consumer = 1001 - KAIROS_RING_COMPLETIONS - 1;
	}
	SECTION("consumer at zero")
	{
		area.header().completion_consumer = 0;
	}
	CHECK(host.space() == 0);
	CHECK_FALSE(host.stage(one));
	CHECK(host.push({&one, 1}) == 0);
	CHECK(host.bad_indices() == 2);
	CHECK(area.header().completion_producer == 1001u);

	area.header().completion_consumer = 1001;
	CHECK(host.space() == KAIROS_RING_COMPLETIONS);
}

TEST_CASE("host_polling is set and cleared by the host", "[outsourcing][ring]")
{
	Area area;
	GuestRing::initialise(area.span(), 0);
	RequestConsumer host(area.span());
	host.set_host_polling(true);
	CHECK(area.header().host_polling == 1u);
	host.set_host_polling(false);
	CHECK(area.header().host_polling == 0u);
}

TEST_CASE("requests are waiting only while a sane producer is ahead of the consumer", "[outsourcing][ring]")
{
	Area area;
	GuestRing::initialise(area.span(), UINT32_MAX - 1);
	GuestRing guest(area.span());
	RequestConsumer host(area.span());
	std::array<kairos_timer_request, KAIROS_RING_REQUESTS> out{};
	CHECK_FALSE(host.requests_waiting());
	REQUIRE(guest.post(request(1)));
	REQUIRE(guest.post(request(2)));  // across the wrap
	CHECK(host.requests_waiting());
	CHECK(host.drain(out).count == 2);
	CHECK_FALSE(host.requests_waiting());
	// Garbage: never "waiting", or a polling host would spin on it.
	area.header().request_producer = host.consumer() + KAIROS_RING_REQUESTS + 1;
	CHECK_FALSE(host.requests_waiting());
	area.header().request_producer = host.consumer() - 1;
	CHECK_FALSE(host.requests_waiting());
	area.header().request_producer = host.consumer() + KAIROS_RING_REQUESTS;
	CHECK(host.requests_waiting());
}

// Guest and host on two threads, with the protocol's own ordering only: the
// guest posts requests in random batches and consumes completions; the host
// drains requests and answers each with a completion. Indices start just
// below UINT32_MAX so both rings wrap.
TEST_CASE("request and completion rings across two threads, wrapping the indices", "[outsourcing][ring]")
{
	constexpr uint32_t kTotal = 100000;
	Area area;
	GuestRing::initialise(area.span(), UINT32_MAX - 3000);
	RequestConsumer requests(area.span());
	CompletionProducer completions(area.span());

	std::atomic<bool> guest_failed{false};
	std::thread guest_thread([&] {
		GuestRing guest(area.span());
		std::mt19937 random(1);
		uint32_t next_id = 0;
		uint32_t expected_completion = 0;
		std::vector<kairos_timer_request> batch;
		std::vector<kairos_timer_completion> seen;
		while (expected_completion < kTotal) {
			if (next_id < kTotal) {
				uint32_t want = std::min<uint32_t>(kTotal - next_id, 1 + random() % 300);
				batch.clear();
				for (uint32_t i = 0; i < want; ++i)
					batch.push_back(request(next_id + i, uint64_t{next_id + i} * 3));
				next_id += static_cast<uint32_t>(guest.post(batch));
			}
			seen.clear();
			guest.take(seen, 1 + random() % 600);
			for (const kairos_timer_completion &completion : seen) {
				if (completion.timer_id != expected_completion ||
				    completion.time_ns != uint64_t{expected_completion} * 3)
					guest_failed = true;
				++expected_completion;
			}
			if (seen.empty())
				std::this_thread::yield();
		}
	});

	uint32_t expected_request = 0;
	bool host_failed = false;
	Batch batch;
	std::vector<kairos_timer_completion> answers;
	size_t answered = 0;
	uint64_t drains = 0;
	while (answered < kTotal) {
		DrainResult drained = requests.drain(batch);
		host_failed |= drained.bad_producer;
		drains += drained.count > 0;
		for (uint32_t i = 0; i < drained.count; ++i) {
			host_failed |= batch[i].timer_id != expected_request;
			host_failed |= batch[i].deadline_ns != uint64_t{expected_request} * 3;
			answers.push_back(expired(batch[i].timer_id, batch[i].deadline_ns));
			++expected_request;
		}
		size_t pushed = completions.push(std::span(answers).subspan(answered));
		answered += pushed;
		if (!drained.count && !pushed)
			std::this_thread::yield();
	}
	guest_thread.join();
	CHECK_FALSE(host_failed);
	CHECK_FALSE(guest_failed);
	CHECK(expected_request == kTotal);
	CHECK(requests.bad_indices() == 0);
	CHECK(completions.bad_indices() == 0);
	// Both rings went past UINT32_MAX.
	CHECK(area.header().request_consumer == UINT32_MAX - 3000 + kTotal);
	CHECK(area.header().completion_producer == UINT32_MAX - 3000 + kTotal);
	CHECK(drains < kTotal);  // batches: fewer non-empty drains than requests
}
