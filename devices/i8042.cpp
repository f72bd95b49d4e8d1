#include "devices/i8042.h"

#include <cstdint>
#include <mutex>
#include <span>
#include <string>

// Command and bit names follow Linux's drivers/input/serio/i8042.h; their
// meaning is the 8042 command set of the IBM PS/2 Hardware Interface
// Technical Reference ("Keyboard/Auxiliary Device Controller").

namespace kairos::devices {

namespace {

constexpr uint8_t kStatusOutputFull = 0x01;  // OBF: a byte waits at port 0x60
constexpr uint8_t kStatusSystemFlag = 0x04;  // mirrors command byte bit 2
constexpr uint8_t kStatusCommand = 0x08;     // last write went to port 0x64
constexpr uint8_t kStatusUnlocked = 0x10;    // keylock switch off; else Linux warns
constexpr uint8_t kStatusAuxData = 0x20;     // the byte at port 0x60 is from the aux port

constexpr uint8_t kCtrKeyboardInterrupt = 0x01;
constexpr uint8_t kCtrSystemFlag = 0x04;
constexpr uint8_t kCtrKeyboardDisabled = 0x10;
constexpr uint8_t kCtrAuxDisabled = 0x20;
constexpr uint8_t kCtrTranslate = 0x40;

constexpr uint8_t kCmdReadCtr = 0x20;
constexpr uint8_t kCmdWriteCtr = 0x60;
constexpr uint8_t kCmdAuxDisable = 0xa7;
constexpr uint8_t kCmdAuxEnable = 0xa8;
constexpr uint8_t kCmdAuxTest = 0xa9;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdKeyboardTest = 0xab;
constexpr uint8_t kCmdKeyboardDisable = 0xad;
constexpr uint8_t kCmdKeyboardEnable = 0xae;
constexpr uint8_t kCmdReadOutputPort = 0xd0;
constexpr uint8_t kCmdWriteOutputPort = 0xd1;
constexpr uint8_t kCmdWriteKeyboardOutput = 0xd2;
constexpr uint8_t kCmdWriteAuxOutput = 0xd3;  // Linux's AUX_LOOP
constexpr uint8_t kCmdWriteAux = 0xd4;
// 0xf0-0xff pulse output port bits 0-3 low for each clear bit of the low
// nibble; bit 0 is the CPU reset line, so 0xfe is "reset the machine".
constexpr uint8_t kCmdPulseOutputFirst = 0xf0;

constexpr uint8_t kSelfTestPassed = 0x55;
constexpr uint8_t kInterfaceTestPassed = 0x00;

constexpr uint8_t kOutputPortReset = 0x01;  // active low: 0 holds the CPU in reset
constexpr uint8_t kOutputPortA20 = 0x02;

}  // namespace

class I8042::Controller {
public:
	explicit Controller(ResetCallback reset) : reset_(std::move(reset)) {}

	uint8_t read_data();
	uint8_t read_status();
	void write_data(uint8_t value);
	void write_command(uint8_t command);

private:
	// Require mutex_.
	void respond(uint8_t value, bool aux);
	void pulse_reset() { reset_pending_ = true; }
	// Runs the reset callback outside the lock: it may stop vCPUs, and one
	// of them may be waiting for this lock.
	void finish(std::unique_lock<std::mutex> &lock);

	ResetCallback reset_;
	std::mutex mutex_;
	// What a BIOS leaves after POST: keyboard interrupt on, POST passed,
	// scan-code translation on (Firecracker uses the same).
	uint8_t command_byte_ = kCtrKeyboardInterrupt | kCtrSystemFlag | kCtrTranslate;
	uint8_t output_port_ = kOutputPortReset | kOutputPortA20;
	// The one-byte output buffer. A read when empty returns the stale
	// byte, as the chip does.
	uint8_t output_ = 0;
	bool output_full_ = false;
	bool output_aux_ = false;
	bool last_write_was_command_ = false;
	// A command that takes its parameter from the next data-port write.
	uint8_t pending_command_ = 0;
	bool reset_pending_ = false;
};

uint8_t I8042::Controller::read_data()
{
	std::lock_guard lock(mutex_);
	output_full_ = false;
	output_aux_ = false;
	return output_;
}

uint8_t I8042::Controller::read_status()
{
	std::lock_guard lock(mutex_);
	// Input buffer full (bit 1) never shows: commands complete at once.
	uint8_t status = kStatusUnlocked;
	if (output_full_)
		status |= kStatusOutputFull;
	if (output_full_ && output_aux_)
		status |= kStatusAuxData;
	if (command_byte_ & kCtrSystemFlag)
		status |= kStatusSystemFlag;
	if (last_write_was_command_)
		status |= kStatusCommand;
	return status;
}

void I8042::Controller::write_data(uint8_t value)
{
	std::unique_lock lock(mutex_);
	last_write_was_command_ = false;
	uint8_t command = pending_command_;
	pending_command_ = 0;
	switch (command) {
	case kCmdWriteCtr:
		command_byte_ = value;
		break;
	case kCmdWriteOutputPort:
		output_port_ = value;
		if (!(value & kOutputPortReset))
			pulse_reset();
		break;
	case kCmdWriteKeyboardOutput:
		respond(value, false);
		break;
	case kCmdWriteAuxOutput:
		// Linux's AUX_LOOP test reads this back as aux data. It then waits
		// 250 ms for an IRQ 12 we do not raise and concludes there is no
		// aux port; "i8042.noaux" on the command line skips that wait.
		respond(value, true);
		break;
	case kCmdWriteAux:
	default:
		// A byte for the mouse or the keyboard: neither is attached, so
		// it is dropped and the guest's driver times out waiting for ACK.
		break;
	}
	finish(lock);
}

void I8042::Controller::write_command(uint8_t command)
{
	std::unique_lock lock(mutex_);
	last_write_was_command_ = true;
	pending_command_ = 0;  // a new command abandons a missing parameter
	switch (command) {
	case kCmdReadCtr:
		respond(command_byte_, false);
		break;
	case kCmdWriteCtr:
	case kCmdWriteOutputPort:
	case kCmdWriteKeyboardOutput:
	case kCmdWriteAuxOutput:
	case kCmdWriteAux:
		pending_command_ = command;
		break;
	case kCmdAuxDisable:
		command_byte_ |= kCtrAuxDisabled;
		break;
	case kCmdAuxEnable:
		command_byte_ &= ~kCtrAuxDisabled;
		break;
	case kCmdAuxTest:
	case kCmdKeyboardTest:
		respond(kInterfaceTestPassed, false);
		break;
	case kCmdSelfTest:
		respond(kSelfTestPassed, false);
		break;
	case kCmdKeyboardDisable:
		command_byte_ |= kCtrKeyboardDisabled;
		break;
	case kCmdKeyboardEnable:
		command_byte_ &= ~kCtrKeyboardDisabled;
		break;
	case kCmdReadOutputPort:
		respond(output_port_, false);
		break;
	default:
		if (command >= kCmdPulseOutputFirst && !(command & kOutputPortReset))
			pulse_reset();
		// Anything else is ignored: Linux's probe and reboot need no
		// other command.
		break;
	}
	finish(lock);
}

void I8042::Controller::respond(uint8_t value, bool aux)
{
	output_ = value;
	output_full_ = true;
	output_aux_ = aux;
}

void I8042::Controller::finish(std::unique_lock<std::mutex> &lock)
{
	bool reset = reset_pending_;
	reset_pending_ = false;
	lock.unlock();
	if (reset && reset_)
		reset_();
}

// One of the controller's two ports, as a 1-byte bus device.
class I8042::Port : public BusDevice {
public:
	enum class Kind { data, command };

	Port(std::shared_ptr<Controller> controller, Kind kind) : controller_(std::move(controller)), kind_(kind) {}

	std::string name() const override { return kind_ == Kind::data ? "i8042 data" : "i8042 command"; }

	void read(uint64_t offset, std::span<uint8_t> data) override
	{
		// Only the first byte is ours; the rest of a wide access falls on
		// ports we do not decode and floats high.
		for (size_t i = 0; i < data.size(); i++) {
			if (offset + i != 0)
				data[i] = 0xff;
			else
				data[i] = kind_ == Kind::data ? controller_->read_data() : controller_->read_status();
		}
	}

	void write(uint64_t offset, std::span<const uint8_t> data) override
	{
		if (offset != 0 || data.empty())
			return;
		if (kind_ == Kind::data)
			controller_->write_data(data[0]);
		else
			controller_->write_command(data[0]);
	}

private:
	std::shared_ptr<Controller> controller_;
	Kind kind_;
};

I8042::I8042(ResetCallback reset)
	: controller_(std::make_shared<Controller>(std::move(reset))),
	  data_port_(std::make_shared<Port>(controller_, Port::Kind::data)),
	  command_port_(std::make_shared<Port>(controller_, Port::Kind::command))
{
}

}  // namespace kairos::devices
