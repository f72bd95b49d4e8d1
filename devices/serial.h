// Serial: a 16550A UART (National Semiconductor PC16550D datasheet), enough
// for Linux's 8250 driver to use it as console and for interactive input
// (after kvmtool's hw/serial.c and Firecracker's devices/legacy/serial.rs).
//
// Register it on the I/O bus at its base with length 8, e.g. COM1:
//	bus.add(layout::kPortCom1, layout::kComPortSize, serial);
// and wire its IrqLine to the ISA line (layout::kIrqCom1 for COM1).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "devices/bus.h"
#include "devices/irq_line.h"

namespace kairos::devices {

// Threads: vCPU threads call read/write, the event loop calls
// enqueue_input and the other host-input calls; one mutex guards all
// state. The IrqLine and the output callback are called with that mutex held, so that set_level calls
// and output bytes happen in the order of the register accesses that caused
// them (two racing threads can never leave the line at a stale level).
// Neither may call back into this Serial, and the output callback should not
// block for long, since enqueue_input waits for it meanwhile.
class Serial : public BusDevice {
public:
	// How the guest's driver sent a byte: with the transmit-holding-empty
	// interrupt off (polled) or on. Linux's printk console polls with every
	// UART interrupt off (serial8250_console_write clears IER and restores
	// it after), while its tty layer, which carries all that programs
	// write, sends from the THRE interrupt (serial8250_tx_chars). So a
	// Polled byte is the kernel's own message, or from before any program
	// opened the port; an Interrupt byte may be anyone's.
	enum class TransmitPath { Polled, Interrupt };
	// Called once per transmitted byte.
	using OutputCallback = std::function<void(std::span<const uint8_t>, TransmitPath)>;
	// Called when the guest starts wanting host input again: its driver
	// enabled the received-data interrupt with the receiver empty, or it
	// read the receiver's last byte (once per batch of input, so the host
	// learns how long the guest took to take a batch).
	// Called with the mutex held: it may only signal (an eventfd), as
	// Firecracker's serial does with its buffer_ready_event_fd.
	using InputWantedCallback = std::function<void()>;

	// The receiver FIFO (PC16550D, "FIFO Interrupt Mode Operation"). Host
	// input waits on the host side (vmm/console_input) until it fits: a
	// bigger buffer only lets the host hand the guest more bytes per
	// interrupt, and a guest that is not reading its console still has to
	// take them, two exits each (issue 12, #10). In 16450 mode (FCR0 clear) a real
	// UART holds one character; this one keeps sixteen and interrupts on
	// the first, which a driver that reads while LSR.DR cannot tell apart.
	static constexpr size_t kFifoSize = 16;
	// 4 character times without a character in or out, with at least one
	// in the FIFO, raise the character timeout interrupt (PC16550D, FIFO
	// Interrupt Mode Operation, and Table IV, IIR 0xC).
	static constexpr uint64_t kCharacterTimeoutChars = 4;

	// irq may be null (no line wired: the guest must poll) and output may
	// be empty (transmitted bytes are discarded).
	Serial(std::shared_ptr<IrqLine> irq, OutputCallback output);

	std::string name() const override { return "serial"; }
	void read(uint64_t offset, std::span<uint8_t> data) override;
	void write(uint64_t offset, std::span<const uint8_t> data) override;

	// Host input for the guest, as characters that arrived on the line.
	// Bytes that do not fit are dropped and set LSR.OE, as a receiver
	// overrun does; this never blocks. Feed at most input_space() bytes,
	// and on average no more than one per character_time_ns(): the UART
	// itself does not pace.
	void enqueue_input(std::span<const uint8_t> bytes);
	// How many bytes enqueue_input accepts now, so the event loop holds
	// input back while the guest is not draining the receiver.
	size_t input_space() const;
	// True once the guest's driver has enabled the received-data interrupt,
	// i.e. something in the guest has the port open and will read it. Before
	// that (early boot), Linux flushes the receive FIFO, so a host holding
	// input back until now loses none of it.
	bool guest_reads_input() const;
	// The FIFO level at which received data interrupts (FCR bits 6-7: 1, 4,
	// 8 or 14 bytes; 1 in 16450 mode): the host hands over input in
	// batches of this size, one interrupt each, as a real line would.
	size_t receive_trigger_level() const;
	// How long one character takes on the line the guest programmed:
	// 115200 / divisor baud (the PC16550D's 1.8432 MHz clock / 16), start
	// bit, 5-8 data bits, parity, 1-2 stop bits (LCR). The host must not
	// deliver input faster than this.
	uint64_t character_time_ns() const;
	// True while received characters sit below the trigger level with no
	// character timeout indicated yet: the host must call
	// character_timeout() kCharacterTimeoutChars character times after the
	// last character it delivered, or the guest never hears of them.
	bool awaits_character_timeout() const;
	// The host's timer for the above: indicates the character timeout if
	// characters are still waiting.
	void character_timeout();
	// Lets the event loop sleep instead of polling guest_reads_input and
	// input_space: set once, before the vCPUs run.
	void set_input_wanted(InputWantedCallback callback);

	// What the guest and the host made the UART do (--stats console.uart).
	struct Stats {
		uint64_t register_accesses = 0;  // guest reads and writes: one VM exit each
		uint64_t received_bytes = 0;     // host input taken into the receiver
		uint64_t interrupts = 0;         // rising edges of the interrupt line
	};
	Stats stats() const;

private:
	// All below require mutex_.
	uint8_t read_register(uint64_t offset);
	void write_register(uint64_t offset, uint8_t value);
	void transmit(uint8_t value);
	void push_input(uint8_t value);
	uint8_t pop_input();
	void clear_input();
	size_t trigger_level() const;
	void write_modem_control(uint8_t value);
	uint8_t modem_inputs() const;
	uint8_t interrupt_identification() const;
	void update_irq();
	bool wants_input() const;
	void notify_if_input_wanted(bool wanted_before);

	std::shared_ptr<IrqLine> irq_;
	OutputCallback output_;
	InputWantedCallback input_wanted_;

	mutable std::mutex mutex_;
	uint8_t interrupt_enable_ = 0;
	uint8_t line_control_ = 0;
	uint8_t modem_control_ = 0;
	uint8_t scratch_ = 0;
	// 115200 / 12 = 9600 baud; the value only matters to a guest reading
	// it back, since we transmit at the speed of the host.
	uint8_t divisor_low_ = 12;
	uint8_t divisor_high_ = 0;
	bool fifo_enabled_ = false;
	bool overrun_ = false;
	uint8_t fifo_control_ = 0;  // FCR bits 6-7 (the trigger level) are kept
	// The character timeout indication (IIR 0xC): set by the host's timer,
	// cleared when a character is read or arrives (PC16550D Table IV).
	bool character_timeout_ = false;
	// The THRE interrupt indicator, separate from THR being empty (which it
	// always is): set when THR empties or ETBEI is enabled, cleared by
	// reading IIR while it is the source (PC16550D Table IV).
	bool thr_empty_interrupt_ = false;
	uint8_t modem_status_deltas_ = 0;  // MSR bits 0-3, cleared on read
	std::array<uint8_t, kFifoSize> input_{};
	size_t input_head_ = 0;
	size_t input_count_ = 0;
	bool irq_level_ = false;
	Stats stats_;
};

}  // namespace kairos::devices
