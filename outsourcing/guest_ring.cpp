#include "outsourcing/guest_ring.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "outsourcing/ring.h"

namespace kairos::outsourcing {

void GuestRing::initialise(std::span<uint8_t> area, uint32_t first_index)
{
	std::fill(area.begin(), area.end(), uint8_t{0});
	auto *header = reinterpret_cast<kairos_ring_header *>(area.data());
	header->request_producer = first_index;
	header->request_consumer = first_index;
	header->completion_producer = first_index;
	header->completion_consumer = first_index;
}

GuestRing::GuestRing(std::span<uint8_t> area)
	: header_(reinterpret_cast<kairos_ring_header *>(area.data())), requests_(area.data() + kRequestsOffset),
	  completions_(area.data() + kCompletionsOffset),
	  request_producer_(std::atomic_ref<__u32>(header_->request_producer).load(std::memory_order_relaxed)),
	  completion_consumer_(std::atomic_ref<__u32>(header_->completion_consumer).load(std::memory_order_relaxed))
{
}

uint32_t GuestRing::request_space() const
{
	uint32_t consumer = std::atomic_ref<__u32>(header_->request_consumer).load(std::memory_order_acquire);
	uint32_t used = request_producer_ - consumer;
	return used >= KAIROS_RING_REQUESTS ? 0 : KAIROS_RING_REQUESTS - used;
}

size_t GuestRing::post(std::span<const kairos_timer_request> requests)
{
	size_t count = std::min<size_t>(requests.size(), request_space());
	for (size_t i = 0; i < count; ++i) {
		uint32_t slot = (request_producer_ + static_cast<uint32_t>(i)) % KAIROS_RING_REQUESTS;
		std::memcpy(requests_ + slot * sizeof(kairos_timer_request), &requests[i],
			    sizeof(kairos_timer_request));
	}
	if (count) {
		request_producer_ += static_cast<uint32_t>(count);
		std::atomic_ref<__u32>(header_->request_producer).store(request_producer_, std::memory_order_release);
	}
	return count;
}

uint32_t GuestRing::completions_available() const
{
	uint32_t available = std::atomic_ref<__u32>(header_->completion_producer).load(std::memory_order_acquire) -
			     completion_consumer_;
	// More than a ring: not something a correct host publishes. Take nothing.
	return available > KAIROS_RING_COMPLETIONS ? 0 : available;
}

size_t GuestRing::take(std::vector<kairos_timer_completion> &out, size_t max)
{
	size_t count = std::min<size_t>(completions_available(), max);
	for (size_t i = 0; i < count; ++i) {
		uint32_t slot = (completion_consumer_ + static_cast<uint32_t>(i)) % KAIROS_RING_COMPLETIONS;
		kairos_timer_completion completion;
		std::memcpy(&completion, completions_ + slot * sizeof(kairos_timer_completion), sizeof(completion));
		out.push_back(completion);
	}
	if (count) {
		completion_consumer_ += static_cast<uint32_t>(count);
		std::atomic_ref<__u32>(header_->completion_consumer)
			.store(completion_consumer_, std::memory_order_release);
	}
	return count;
}

}  // namespace kairos::outsourcing
