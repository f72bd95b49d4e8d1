// Host views of the VMRPC ring area (kairos_abi.h): the request ring the
// guest produces into and the completion ring the host produces into.
//
// The area is guest memory: the guest may change any byte at any moment.
// So the host keeps its own copies of the indices it owns (request_consumer,
// completion_producer) and only ever stores them into the area, checks every
// index it reads from the guest before using it, and copies each request out
// of the ring once before looking at it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "abi/kairos_abi.h"

namespace kairos::outsourcing {

// Layout of the area (kairos_abi.h, "VMRPC"): page 0 the header, page 1 the
// requests, pages 2-3 the completions.
inline constexpr size_t kRingAreaSize = KAIROS_RING_PAGES * KAIROS_PAGE_SIZE;
inline constexpr size_t kRequestsOffset = 1 * KAIROS_PAGE_SIZE;
inline constexpr size_t kCompletionsOffset = 2 * KAIROS_PAGE_SIZE;
static_assert(kCompletionsOffset + KAIROS_RING_COMPLETIONS * sizeof(kairos_timer_completion) <= kRingAreaSize);

// Is `area` usable as a ring area: at least kRingAreaSize bytes, and aligned
// so that the header's indices can be accessed atomically? The VMM passes
// whole guest pages, so this only fails for a bug on the host side.
bool ring_area_usable(std::span<const uint8_t> area);

struct DrainResult {
	uint32_t count = 0;         // requests copied out (and consumed)
	bool bad_producer = false;  // the guest's producer index was nonsense
};

class RequestConsumer {
public:
	// area: ring_area_usable(). Adopts the request_consumer found in the
	// header (the guest initialises the header before registering it) and
	// from then on only writes it.
	explicit RequestConsumer(std::span<uint8_t> area);

	// Copies every published request into `out` (oldest first) and then
	// publishes the new consumer index, so one call drains one doorbell's
	// batch and more. A producer index more than KAIROS_RING_REQUESTS
	// ahead of the consumer (free-running uint32 arithmetic) is a guest
	// error: nothing is consumed, it is counted and reported.
	DrainResult drain(std::span<kairos_timer_request, KAIROS_RING_REQUESTS> out);

	// Tells the guest whether the host is draining the ring right now (then
	// it may skip the doorbell). Clearing it is a full barrier, so that a
	// requests_waiting() after it cannot miss a request whose producer saw
	// the flag still set (the guest stores its index, then a full barrier,
	// then reads the flag: one of the two sides sees the other).
	void set_host_polling(bool polling);
	// Whether the guest has published requests not consumed yet. A garbage
	// producer index is not "waiting": the host must not spin on it.
	bool requests_waiting() const;

	uint32_t consumer() const { return consumer_; }
	uint64_t bad_indices() const { return bad_indices_; }

private:
	kairos_ring_header *header_;
	const uint8_t *requests_;
	uint32_t consumer_;
	uint64_t bad_indices_ = 0;
};

class CompletionProducer {
public:
	// area: ring_area_usable(). Adopts the completion_producer found in
	// the header and from then on only writes it.
	explicit CompletionProducer(std::span<uint8_t> area);

	// Free slots, from the guest's completion_consumer (read with acquire
	// ordering). A consumer ahead of the producer, or more than
	// KAIROS_RING_COMPLETIONS behind it, is a guest error: counted, and
	// treated as a full ring, never as space.
	uint32_t space();

	// Writes one completion into the next slot, if the last space() left
	// room for it; the guest sees it at the next publish().
	bool stage(const kairos_timer_completion &completion);
	// Publishes every staged completion (release ordering).
	void publish();

	// space(), then stage() as many as fit, then publish(); returns how
	// many were written.
	size_t push(std::span<const kairos_timer_completion> completions);

	uint32_t producer() const { return published_; }
	// The index the next stage() writes.
	uint32_t next_index() const { return staged_; }
	// The guest's consumer index as the last space() found it, if it was
	// sane (else the one before): every completion below it was taken.
	uint32_t consumer() const { return consumer_; }
	uint64_t bad_indices() const { return bad_indices_; }

	// Asks the guest for KAIROS_PORT_ACK (host_wants_ack) or
	// KAIROS_PORT_DONE (host_wants_done) reports. Setting is followed by a
	// full barrier: the caller then reads the guest's index once more.
	void set_wants_ack(bool wanted);
	void set_wants_done(bool wanted);

	// What the guest reports for priority windows and the advance
	// (kairos_abi.h "Priority windows"): raw, untrusted values.
	uint32_t work_done() const;  // acquire
	int32_t arrival_ns() const;

private:
	kairos_ring_header *header_;
	uint8_t *completions_;
	uint32_t published_;  // what the guest has been shown
	uint32_t staged_;     // written, not yet published
	uint32_t consumer_;   // the last sane consumer index seen
	uint32_t room_ = 0;   // free slots left from the last space()
	uint64_t bad_indices_ = 0;
};

}  // namespace kairos::outsourcing
