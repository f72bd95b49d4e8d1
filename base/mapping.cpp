#include "base/mapping.h"

#include <sys/mman.h>

#include "base/error.h"

namespace kairos {

Result<Mapping> Mapping::anonymous(size_t size, const char *purpose)
{
	// Reserve one huge page more than asked, then give back what lies
	// before the first 2 MiB boundary and after the size: mmap itself
	// only promises 4 KiB alignment.
	const size_t reserved = size + kHugePageBytes;
	void *raw = mmap(nullptr, reserved, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return errno_error(fmt::format("mmap {} MiB for {}", size >> 20, purpose));
	const auto start = reinterpret_cast<uintptr_t>(raw);
	const uintptr_t aligned = (start + kHugePageBytes - 1) & ~uintptr_t{kHugePageBytes - 1};
	if (aligned > start)
		munmap(raw, aligned - start);
	if (const size_t tail = start + reserved - (aligned + size); tail > 0)
		munmap(reinterpret_cast<void *>(aligned + size), tail);
	void *address = reinterpret_cast<void *>(aligned);
	// Where transparent huge pages are "madvise" only (the kernel's
	// choice, or /sys/kernel/mm/transparent_hugepage/enabled), this asks
	// for them; as QEMU does for guest RAM. Refused (no THP in the
	// kernel): 4 KiB pages, as before.
	(void)madvise(address, size, MADV_HUGEPAGE);
	return Mapping(address, size);
}

Result<Mapping> Mapping::of_fd(int fd, size_t size, const char *purpose)
{
	void *address = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (address == MAP_FAILED)
		return errno_error(fmt::format("mmap {} bytes of {}", size, purpose));
	return Mapping(address, size);
}

void Mapping::reset()
{
	if (address_)
		munmap(address_, size_);
	address_ = nullptr;
	size_ = 0;
}

}  // namespace kairos
