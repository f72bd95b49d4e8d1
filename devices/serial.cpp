#include "devices/serial.h"

namespace kairos::devices {

namespace {

// Register offsets from the base (PC16550D Table II).
constexpr uint64_t kData = 0;             // RBR (read), THR (write); DLL when LCR.DLAB
constexpr uint64_t kInterruptEnable = 1;  // IER; DLM when LCR.DLAB
constexpr uint64_t kInterruptId = 2;      // IIR (read), FCR (write)
constexpr uint64_t kLineControl = 3;
constexpr uint64_t kModemControl = 4;
constexpr uint64_t kLineStatus = 5;
constexpr uint64_t kModemStatus = 6;
constexpr uint64_t kScratch = 7;

constexpr uint8_t kIerReceivedData = 0x01;  // ERBFI
constexpr uint8_t kIerThrEmpty = 0x02;      // ETBEI
constexpr uint8_t kIerLineStatus = 0x04;    // ELSI
constexpr uint8_t kIerModemStatus = 0x08;   // EDSSI
constexpr uint8_t kIerMask = 0x0f;          // bits 4-7 are always zero

// IIR interrupt identification, highest priority first (Table IV).
constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirLineStatus = 0x06;
constexpr uint8_t kIirReceivedData = 0x04;
constexpr uint8_t kIirCharacterTimeout = 0x0c;  // same priority as received data
constexpr uint8_t kIirThrEmpty = 0x02;
constexpr uint8_t kIirModemStatus = 0x00;
// IIR bits 6-7 read 1 when FCR0 is set: this is how drivers tell a 16550A
// from an 8250/16450.
constexpr uint8_t kIirFifosEnabled = 0xc0;

constexpr uint8_t kFcrEnableFifos = 0x01;
constexpr uint8_t kFcrClearReceive = 0x02;
constexpr uint8_t kFcrTriggerShift = 6;  // bits 6-7: the receiver trigger level
// FCR bits 6-7 as a FIFO level (PC16550D FCR): 01, 04, 08, 14 bytes.
constexpr size_t kTriggerLevels[] = {1, 4, 8, 14};

// LCR bits 0-1: 5-8 data bits; bit 2: 2 stop bits (1.5 with 5 data bits);
// bit 3: a parity bit (PC16550D LCR).
constexpr uint8_t kLcrWordLength = 0x03;
constexpr uint8_t kLcrTwoStopBits = 0x04;
constexpr uint8_t kLcrParity = 0x08;
// The 1.8432 MHz crystal of the PC divided by 16 (PC16550D, Programmable
// Baud Generator): the baud rate is this over the divisor.
constexpr uint64_t kBaudClock = 115200;
constexpr uint64_t kNanosecondsPerSecond = 1'000'000'000;

constexpr uint8_t kLcrDivisorLatch = 0x80;  // DLAB

constexpr uint8_t kMcrDtr = 0x01;
constexpr uint8_t kMcrRts = 0x02;
constexpr uint8_t kMcrOut1 = 0x04;
constexpr uint8_t kMcrOut2 = 0x08;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kMcrMask = 0x1f;  // bits 5-7 are always zero

constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrOverrun = 0x02;
constexpr uint8_t kLsrThrEmpty = 0x20;
constexpr uint8_t kLsrTransmitterEmpty = 0x40;

constexpr uint8_t kMsrDeltaCts = 0x01;
constexpr uint8_t kMsrDeltaDsr = 0x02;
constexpr uint8_t kMsrTrailingEdgeRi = 0x04;
constexpr uint8_t kMsrDeltaDcd = 0x08;
constexpr uint8_t kMsrCts = 0x10;
constexpr uint8_t kMsrDsr = 0x20;
constexpr uint8_t kMsrRi = 0x40;
constexpr uint8_t kMsrDcd = 0x80;

}  // namespace

Serial::Serial(std::shared_ptr<IrqLine> irq, OutputCallback output) : irq_(std::move(irq)), output_(std::move(output))
{
}

void Serial::read(uint64_t offset, std::span<uint8_t> data)
{
	std::lock_guard lock(mutex_);
	stats_.register_accesses++;
	bool wanted_before = wants_input();
	// A wide access to an 8-bit ISA device is a run of byte accesses to
	// consecutive ports.
	for (size_t i = 0; i < data.size(); i++)
		data[i] = read_register(offset + i);
	notify_if_input_wanted(wanted_before);
}

void Serial::write(uint64_t offset, std::span<const uint8_t> data)
{
	std::lock_guard lock(mutex_);
	stats_.register_accesses++;
	bool wanted_before = wants_input();
	for (size_t i = 0; i < data.size(); i++)
		write_register(offset + i, data[i]);
	notify_if_input_wanted(wanted_before);
}

void Serial::set_input_wanted(InputWantedCallback callback)
{
	std::lock_guard lock(mutex_);
	input_wanted_ = std::move(callback);
}

bool Serial::wants_input() const
{
	return (interrupt_enable_ & kIerReceivedData) && input_count_ == 0;
}

void Serial::notify_if_input_wanted(bool wanted_before)
{
	if (!wanted_before && wants_input() && input_wanted_)
		input_wanted_();
}

void Serial::enqueue_input(std::span<const uint8_t> bytes)
{
	std::lock_guard lock(mutex_);
	// Unlike the PC16550D (MCR bit 4), the receiver stays connected in
	// loopback mode, so keystrokes typed while a driver probes are kept.
	for (uint8_t byte : bytes)
		push_input(byte);
	stats_.received_bytes += bytes.size();
	update_irq();
}

Serial::Stats Serial::stats() const
{
	std::lock_guard lock(mutex_);
	return stats_;
}

bool Serial::guest_reads_input() const
{
	std::lock_guard lock(mutex_);
	return (interrupt_enable_ & kIerReceivedData) != 0;
}

size_t Serial::input_space() const
{
	std::lock_guard lock(mutex_);
	return kFifoSize - input_count_;
}

size_t Serial::receive_trigger_level() const
{
	std::lock_guard lock(mutex_);
	return trigger_level();
}

size_t Serial::trigger_level() const
{
	return fifo_enabled_ ? kTriggerLevels[fifo_control_ >> kFcrTriggerShift] : 1;
}

uint64_t Serial::character_time_ns() const
{
	std::lock_guard lock(mutex_);
	// A divisor of 0 counts through all 65536 before it reloads: the
	// slowest line, never an unbounded one.
	uint64_t divisor = (uint64_t{divisor_high_} << 8) | divisor_low_;
	if (divisor == 0)
		divisor = 65536;
	const uint64_t data_bits = 5 + (line_control_ & kLcrWordLength);
	const uint64_t parity_bits = (line_control_ & kLcrParity) ? 1 : 0;
	uint64_t stop_half_bits = 2;
	if (line_control_ & kLcrTwoStopBits)
		stop_half_bits = data_bits == 5 ? 3 : 4;
	// In half bits, for the 1.5 stop bits; at most 24 * 65536 * 1e9.
	const uint64_t half_bits = 2 * (1 + data_bits + parity_bits) + stop_half_bits;
	return half_bits * divisor * kNanosecondsPerSecond / (2 * kBaudClock);
}

bool Serial::awaits_character_timeout() const
{
	std::lock_guard lock(mutex_);
	return input_count_ > 0 && input_count_ < trigger_level() && !character_timeout_;
}

void Serial::character_timeout()
{
	std::lock_guard lock(mutex_);
	if (input_count_ == 0)
		return;
	character_timeout_ = true;
	update_irq();
}

uint8_t Serial::read_register(uint64_t offset)
{
	const bool divisor_latch = line_control_ & kLcrDivisorLatch;
	switch (offset) {
	case kData: {
		if (divisor_latch)
			return divisor_low_;
		if (input_count_ == 0)
			return 0;
		uint8_t value = pop_input();
		update_irq();
		return value;
	}
	case kInterruptEnable:
		return divisor_latch ? divisor_high_ : interrupt_enable_;
	case kInterruptId: {
		uint8_t id = interrupt_identification();
		// Reading IIR while THRE is the source acknowledges it (Table IV);
		// the other sources are acknowledged by reading LSR, RBR or MSR.
		if (id == kIirThrEmpty) {
			thr_empty_interrupt_ = false;
			update_irq();
		}
		return id | (fifo_enabled_ ? kIirFifosEnabled : 0);
	}
	case kLineControl:
		return line_control_;
	case kModemControl:
		return modem_control_;
	case kLineStatus: {
		// Transmission is synchronous, so THR and the shift register are
		// always empty.
		uint8_t status = kLsrThrEmpty | kLsrTransmitterEmpty;
		if (input_count_ > 0)
			status |= kLsrDataReady;
		if (overrun_)
			status |= kLsrOverrun;
		overrun_ = false;  // error bits clear on read (PC16550D LSR)
		update_irq();
		return status;
	}
	case kModemStatus: {
		uint8_t status = modem_inputs() | modem_status_deltas_;
		modem_status_deltas_ = 0;
		update_irq();
		return status;
	}
	case kScratch:
		return scratch_;
	default:
		return 0xff;
	}
}

void Serial::write_register(uint64_t offset, uint8_t value)
{
	const bool divisor_latch = line_control_ & kLcrDivisorLatch;
	switch (offset) {
	case kData:
		if (divisor_latch)
			divisor_low_ = value;
		else
			transmit(value);
		break;
	case kInterruptEnable: {
		if (divisor_latch) {
			divisor_high_ = value;
			break;
		}
		uint8_t previous = interrupt_enable_;
		interrupt_enable_ = value & kIerMask;
		// Enabling ETBEI while THR is empty raises THRE at once. Linux's
		// 8250 driver tests exactly this at startup (UART_BUG_THRE) by
		// toggling IER between IIR reads; only a 0-to-1 change counts, as
		// a rewrite of the same IER must not re-raise an acknowledged THRE.
		if ((interrupt_enable_ & kIerThrEmpty) && !(previous & kIerThrEmpty))
			thr_empty_interrupt_ = true;
		update_irq();
		break;
	}
	case kInterruptId: {
		// FCR: changing bit 0 clears the FIFOs, and the other bits only
		// take effect with bit 0 set (PC16550D FCR). The receive buffer
		// is the same in both modes; there is no transmit FIFO to clear.
		const bool enable = value & kFcrEnableFifos;
		if (enable != fifo_enabled_ || (enable && (value & kFcrClearReceive)))
			clear_input();
		fifo_enabled_ = enable;
		if (enable)
			fifo_control_ = value;
		update_irq();
		break;
	}
	case kLineControl:
		line_control_ = value;
		break;
	case kModemControl:
		write_modem_control(value);
		break;
	case kScratch:
		scratch_ = value;
		break;
	default:
		// LSR and MSR writes are for factory test only (PC16550D).
		break;
	}
}

void Serial::transmit(uint8_t value)
{
	// Loopback (MCR bit 4): the transmitter output is wired to the receiver input.
	if (modem_control_ & kMcrLoop)
		push_input(value);
	else if (output_)
		output_(std::span<const uint8_t>(&value, 1),
			(interrupt_enable_ & kIerThrEmpty) ? TransmitPath::Interrupt : TransmitPath::Polled);
	// Writing THR acknowledges THRE, and since the byte left at once THR
	// is empty again: the net effect is a pending THRE interrupt.
	thr_empty_interrupt_ = true;
	update_irq();
}

void Serial::push_input(uint8_t value)
{
	if (input_count_ == kFifoSize) {
		overrun_ = true;  // the new byte is lost, the FIFO is kept (LSR bit 1)
		return;
	}
	input_[(input_head_ + input_count_) % kFifoSize] = value;
	input_count_++;
	character_timeout_ = false;  // a character came in: the timer restarts
}

uint8_t Serial::pop_input()
{
	uint8_t value = input_[input_head_];
	input_head_ = (input_head_ + 1) % kFifoSize;
	input_count_--;
	// Reading RBR resets the character timeout (PC16550D Table IV).
	character_timeout_ = false;
	return value;
}

void Serial::clear_input()
{
	input_head_ = 0;
	input_count_ = 0;
	character_timeout_ = false;
}

void Serial::write_modem_control(uint8_t value)
{
	uint8_t before = modem_inputs();
	modem_control_ = value & kMcrMask;
	uint8_t after = modem_inputs();
	uint8_t changed = before ^ after;
	if (changed & kMsrCts)
		modem_status_deltas_ |= kMsrDeltaCts;
	if (changed & kMsrDsr)
		modem_status_deltas_ |= kMsrDeltaDsr;
	if (changed & kMsrDcd)
		modem_status_deltas_ |= kMsrDeltaDcd;
	// TERI flags only the end of a ring (MSR bit 2).
	if ((before & kMsrRi) && !(after & kMsrRi))
		modem_status_deltas_ |= kMsrTrailingEdgeRi;
	update_irq();
}

uint8_t Serial::modem_inputs() const
{
	// Report a modem that is present and ready (DCD, DSR, CTS) so that
	// getty and shells do not wait for carrier.
	if (!(modem_control_ & kMcrLoop))
		return kMsrDcd | kMsrDsr | kMsrCts;
	// Loopback (MCR bit 4): RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
	uint8_t inputs = 0;
	if (modem_control_ & kMcrRts)
		inputs |= kMsrCts;
	if (modem_control_ & kMcrDtr)
		inputs |= kMsrDsr;
	if (modem_control_ & kMcrOut1)
		inputs |= kMsrRi;
	if (modem_control_ & kMcrOut2)
		inputs |= kMsrDcd;
	return inputs;
}

uint8_t Serial::interrupt_identification() const
{
	if ((interrupt_enable_ & kIerLineStatus) && overrun_)
		return kIirLineStatus;
	// Received data interrupts at the trigger level, and below it only once
	// the host's timer indicated the character timeout (Table IV); so a
	// steady stream interrupts once per trigger level of characters.
	if ((interrupt_enable_ & kIerReceivedData) && input_count_ >= trigger_level())
		return kIirReceivedData;
	if ((interrupt_enable_ & kIerReceivedData) && character_timeout_ && input_count_ > 0)
		return kIirCharacterTimeout;
	if ((interrupt_enable_ & kIerThrEmpty) && thr_empty_interrupt_)
		return kIirThrEmpty;
	if ((interrupt_enable_ & kIerModemStatus) && modem_status_deltas_)
		return kIirModemStatus;
	return kIirNone;
}

void Serial::update_irq()
{
	// On the PC, OUT2 enables the buffer between INTR and the ISA line, and
	// loopback forces OUT2's pin inactive (PC16550D MCR bit 4), so loopback
	// interrupts show in IIR but never reach the interrupt controller.
	bool level =
		interrupt_identification() != kIirNone && (modem_control_ & kMcrOut2) && !(modem_control_ & kMcrLoop);
	if (level == irq_level_)
		return;
	irq_level_ = level;
	if (level)
		stats_.interrupts++;
	if (irq_)
		irq_->set_level(level);
}

}  // namespace kairos::devices
