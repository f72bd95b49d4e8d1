// I8042: the PS/2 keyboard controller, just enough for Linux's i8042 driver
// to find it and for "reboot=k" to reset the machine (after Firecracker's
// devices/legacy/i8042.rs). No keyboard or mouse is attached.
//
// The controller answers at two ports that are not adjacent: data at 0x60
// and command/status at 0x64, with the system control port B at 0x61
// between them. So it hands out one 1-byte bus device per port:
//	devices::I8042 i8042(reset);
//	bus.add(layout::kPortI8042Data, 1, i8042.data_port());
//	bus.add(layout::kPortI8042Command, 1, i8042.command_port());
// The ports share the controller; either may outlive the I8042 object.
#pragma once

#include <functional>
#include <memory>

#include "devices/bus.h"

namespace kairos::devices {

class I8042 {
public:
	// Called, with no lock held, each time the guest pulses the CPU reset
	// line: command 0xfe, or command 0xd1 writing output port bit 0 as 0.
	// Linux's "reboot=k" pulses it up to ten times while it waits to die,
	// so the callback must be idempotent.
	using ResetCallback = std::function<void()>;

	explicit I8042(ResetCallback reset);

	// Port 0x60: reads take the output buffer; writes are parameters of
	// the last command, or keyboard commands (dropped: no keyboard).
	std::shared_ptr<BusDevice> data_port() const { return data_port_; }
	// Port 0x64: reads are the status register; writes are commands.
	std::shared_ptr<BusDevice> command_port() const { return command_port_; }

private:
	class Controller;
	class Port;

	std::shared_ptr<Controller> controller_;
	std::shared_ptr<BusDevice> data_port_;
	std::shared_ptr<BusDevice> command_port_;
};

}  // namespace kairos::devices
