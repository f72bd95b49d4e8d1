// GuestRing: the guest's side of the VMRPC ring protocol, as kairos.ko
// implements it (produce requests, consume completions). The host does not
// use it; tests and the fuzz target play the guest with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "abi/kairos_abi.h"

namespace kairos::outsourcing {

// A request as a guest writes it (vcpu: KAIROS_VCPU_ANY unless named).
inline kairos_timer_request make_request(uint32_t op, uint32_t timer_id, uint64_t deadline_ns,
					 uint16_t vcpu = KAIROS_VCPU_ANY)
{
	return {static_cast<__u16>(op), vcpu, timer_id, deadline_ns};
}

class GuestRing {
public:
	// What the guest does before registering: zero the area and start
	// every index at `first_index` (free-running, so any value works).
	static void initialise(std::span<uint8_t> area, uint32_t first_index = 0);

	// Adopts the request_producer and completion_consumer in the header.
	explicit GuestRing(std::span<uint8_t> area);

	// Free request slots, from the host's request_consumer.
	uint32_t request_space() const;
	// Writes the requests that fit, then publishes them all at once;
	// returns how many were posted.
	size_t post(std::span<const kairos_timer_request> requests);
	bool post(const kairos_timer_request &request) { return post({&request, 1}) == 1; }

	// Completions the host has published and the guest not yet consumed
	// (0 if the producer index claims more than a ring).
	uint32_t completions_available() const;
	// Consumes up to `max` completions, appending them to `out`; returns
	// how many.
	size_t take(std::vector<kairos_timer_completion> &out, size_t max = SIZE_MAX);

	uint32_t request_producer() const { return request_producer_; }
	uint32_t completion_consumer() const { return completion_consumer_; }
	kairos_ring_header &header() const { return *header_; }

private:
	kairos_ring_header *header_;
	uint8_t *requests_;
	const uint8_t *completions_;
	uint32_t request_producer_;
	uint32_t completion_consumer_;
};

}  // namespace kairos::outsourcing
