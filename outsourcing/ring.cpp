#include "outsourcing/ring.h"

#include <atomic>
#include <cstring>

namespace kairos::outsourcing {
namespace {

uint32_t load_acquire(__u32 &index)
{
	return std::atomic_ref<__u32>(index).load(std::memory_order_acquire);
}

uint32_t load_relaxed(__u32 &index)
{
	return std::atomic_ref<__u32>(index).load(std::memory_order_relaxed);
}

void store_release(__u32 &index, uint32_t value)
{
	std::atomic_ref<__u32>(index).store(value, std::memory_order_release);
}

}  // namespace

bool ring_area_usable(std::span<const uint8_t> area)
{
	return area.size() >= kRingAreaSize &&
	       reinterpret_cast<uintptr_t>(area.data()) % std::atomic_ref<__u32>::required_alignment == 0;
}

RequestConsumer::RequestConsumer(std::span<uint8_t> area)
	: header_(reinterpret_cast<kairos_ring_header *>(area.data())), requests_(area.data() + kRequestsOffset),
	  consumer_(load_relaxed(header_->request_consumer))
{
}

DrainResult RequestConsumer::drain(std::span<kairos_timer_request, KAIROS_RING_REQUESTS> out)
{
	// Acquire pairs with the guest's release of the producer: the entries
	// it published are visible once we have seen the index.
	uint32_t producer = load_acquire(header_->request_producer);
	uint32_t available = producer - consumer_;
	if (available > KAIROS_RING_REQUESTS) {
		++bad_indices_;
		return {0, true};
	}
	for (uint32_t i = 0; i < available; ++i) {
		uint32_t slot = (consumer_ + i) % KAIROS_RING_REQUESTS;
		// One copy out of guest memory; only the copy is looked at.
		std::memcpy(&out[i], requests_ + slot * sizeof(kairos_timer_request), sizeof(kairos_timer_request));
	}
	consumer_ += available;
	// Release: our copies are done before the guest may reuse the slots.
	if (available)
		store_release(header_->request_consumer, consumer_);
	return {available, false};
}

void RequestConsumer::set_host_polling(bool polling)
{
	std::atomic_ref<__u32>(header_->host_polling).store(polling ? 1 : 0, std::memory_order_seq_cst);
	std::atomic_thread_fence(std::memory_order_seq_cst);
}

bool RequestConsumer::requests_waiting() const
{
	uint32_t available = load_acquire(header_->request_producer) - consumer_;
	return available != 0 && available <= KAIROS_RING_REQUESTS;
}

CompletionProducer::CompletionProducer(std::span<uint8_t> area)
	: header_(reinterpret_cast<kairos_ring_header *>(area.data())), completions_(area.data() + kCompletionsOffset),
	  published_(load_relaxed(header_->completion_producer)), staged_(published_), consumer_(published_)
{
}

uint32_t CompletionProducer::space()
{
	// Acquire pairs with the guest's release of its consumer index: it has
	// finished reading the slots it gave back before we overwrite them.
	uint32_t consumer = load_acquire(header_->completion_consumer);
	uint32_t used = staged_ - consumer;
	if (used > KAIROS_RING_COMPLETIONS) {
		++bad_indices_;
		room_ = 0;
		return 0;
	}
	consumer_ = consumer;
	room_ = KAIROS_RING_COMPLETIONS - used;
	return room_;
}

bool CompletionProducer::stage(const kairos_timer_completion &completion)
{
	if (room_ == 0)
		return false;
	uint32_t slot = staged_ % KAIROS_RING_COMPLETIONS;
	std::memcpy(completions_ + slot * sizeof(kairos_timer_completion), &completion,
		    sizeof(kairos_timer_completion));
	++staged_;
	--room_;
	return true;
}

void CompletionProducer::publish()
{
	if (staged_ == published_)
		return;
	published_ = staged_;
	store_release(header_->completion_producer, published_);
}

size_t CompletionProducer::push(std::span<const kairos_timer_completion> completions)
{
	space();
	size_t written = 0;
	while (written < completions.size() && stage(completions[written]))
		++written;
	publish();
	return written;
}

namespace {

void set_flag(__u32 &flag, bool wanted)
{
	std::atomic_ref<__u32>(flag).store(wanted ? 1 : 0, std::memory_order_seq_cst);
	std::atomic_thread_fence(std::memory_order_seq_cst);
}

}  // namespace

void CompletionProducer::set_wants_ack(bool wanted)
{
	set_flag(header_->host_wants_ack, wanted);
}

void CompletionProducer::set_wants_done(bool wanted)
{
	set_flag(header_->host_wants_done, wanted);
}

uint32_t CompletionProducer::work_done() const
{
	return load_acquire(header_->work_done);
}

int32_t CompletionProducer::arrival_ns() const
{
	return std::atomic_ref<__s32>(header_->arrival_ns).load(std::memory_order_relaxed);
}

}  // namespace kairos::outsourcing
