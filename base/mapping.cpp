#include "base/mapping.h"

#include <sys/mman.h>

#include "base/error.h"

namespace kairos {

Result<Mapping> Mapping::anonymous(size_t size, const char *purpose)
{
	void *address = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (address == MAP_FAILED)
		return errno_error(fmt::format("mmap {} MiB for {}", size >> 20, purpose));
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
