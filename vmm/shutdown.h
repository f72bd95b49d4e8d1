// One shutdown path for every cause (DESIGN.md section 1): whoever sees the
// first cause records it here; everything then stops, and the process exits
// with a code that says why.
#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include "base/event_fd.h"
#include "base/result.h"

namespace kairos::vmm {

enum class StopReason {
	PowerOff,     // the guest powered off
	Reset,        // the guest reset itself (reboot=k); Kairos does not restart it
	GuestPanic,   // the guest kernel panicked
	TripleFault,  // the guest crashed hard (KVM_EXIT_SHUTDOWN)
	GuestError,   // KVM could not run the guest (entry failure, emulation error)
	HostError,    // something failed on the host side
	Signal,       // SIGINT/SIGTERM
	UserQuit,     // the user's Ctrl-A x on the console: a request, exit 0 as QEMU's
};

// Process exit codes, documented in `kairos --help` and the README.
int exit_code_for(StopReason reason, int signal_number);
// How a run ended: the first stop request's reason and detail, and the
// process exit code that goes with them.
struct RunResult {
	StopReason reason;
	std::string detail;
	int exit_code;
};

const char *describe(StopReason reason);
// A stable name for programs (--events): "power-off", "guest-panic", ...
const char *reason_name(StopReason reason);

class Shutdown {
public:
	static Result<Shutdown> create();
	Shutdown(Shutdown &&other) noexcept;

	// Thread-safe; the first request wins, later ones are ignored.
	void request(StopReason reason, std::string detail, int signal_number = 0);
	bool requested() const { return requested_.load(std::memory_order_acquire); }

	StopReason reason() const;
	std::string detail() const;
	int signal_number() const;
	// Readable once a stop was requested; the event loop watches it.
	int wake_fd() const { return wake_.fd(); }

private:
	explicit Shutdown(EventFd wake) : wake_(std::move(wake)) {}

	EventFd wake_;
	std::atomic<bool> requested_{false};
	mutable std::mutex mutex_;
	StopReason reason_ = StopReason::HostError;
	std::string detail_;
	int signal_number_ = 0;
};

}  // namespace kairos::vmm
