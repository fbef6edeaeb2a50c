// checker.hpp — the harness around the broker core: every handle_* call goes
// through it, and every output of the core is checked against the Model.
//
// Rules:
// - The checker owns the Broker and the Model and keeps them in step: a line
//   is applied to the model exactly when its final '\n' is handed to
//   handle_receive (lines within one call in stream order, as the core reads
//   them), and a line that passes line_bytes_max when its byte number
//   line_bytes_max + 1 is.
// - After each call it drains poll_close and poll_transmit and checks them
//   all: every Close must be due in the model (and every due Close must come),
//   every Transmit must carry exactly the frames the model queued, every
//   connection's pending_bytes must equal the model's, and the core's own
//   check_invariants must hold (after every call unless told otherwise).
// - The only thing the model cannot know is which subscriber the broker
//   picks for a "one" message. The checker cuts a receive right after such a
//   line and reads the choice back from pending_bytes and the Closes: exactly
//   one candidate must have taken the frame.
// - Anything wrong throws CheckFailure (model.hpp) with what was expected and what
//   happened. The handlers it calls must not call back into the checker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker.hpp"
#include "model.hpp"

namespace memq::sim {

// Printable form of wire bytes: \r, \n and \xNN for controls and non-ASCII
// (backslashes stay as they are, so JSON escapes read naturally); long text is cut.
std::string printable(std::string_view bytes, std::size_t max_bytes = 200);
// One expectation, for failure messages.
std::string describe(const Expected& expected);

class Checker {
public:
    // Handed every Transmit once it is checked and, one per frame, what the
    // model says each one is. The Transmit comes from poll_transmit(Transmit&),
    // memqd's overload: whatever vector the handler leaves in it (emptied)
    // goes back to the core as that connection's next queue.
    using TransmitHandler = std::function<void(Transmit&, std::vector<Expected>&)>;
    // Handed every Close once it is checked.
    using CloseHandler = std::function<void(ConnId, CloseReason)>;

    // Handed every StorageWrite of a durable broker once it is checked.
    using StorageHandler = std::function<void(storage::StorageWrite&)>;

    Checker(const Limits& limits, std::uint64_t broker_seed, std::uint64_t incarnation = 0,
            const Durability& durability = {});
    // The broker process restarts: a new core and a new model, with nothing
    // of the old ones (no connection, no topic); the caller forgets its
    // connections without handle_disconnect (there is nobody to tell).
    void restart(std::uint64_t broker_seed, std::uint64_t incarnation);

    void on_transmit(TransmitHandler handler) { on_transmit_ = std::move(handler); }
    void on_close(CloseHandler handler) { on_close_ = std::move(handler); }
    void on_storage(StorageHandler handler) { on_storage_ = std::move(handler); }

    // Durable topics. The writes up to `seq` are synced / a write or sync failed /
    // the shell asks for a snapshot (to recover from a failure).
    void synced(std::uint64_t seq);
    void storage_failed();
    void request_snapshot();
    // The broker process crashed and comes back on what its disk kept, `log`.
    // Recovery runs in strict mode, and in salvage mode under
    // `salvage_incarnation` when strict refuses (a corrupt record inside).
    // Checked against the model before the crash: nothing corrupt comes
    // back, every recovered cached message is byte for byte one the model
    // cached under that index; unless the damage is in `damaged_topics`,
    // every topic goes on past every index it handed out, and every cached
    // message whose record was synced is back.
    // `synced_messages_checked` false: rot hit a take record, so a message
    // handed out may be back and evict others; that check is skipped.
    struct Recovery {
        bool salvaged = false;
        // The log goes on as it is, cut to this size (its torn tail gone):
        // the caller's disk must cut it there. None: a snapshot replaces it.
        std::optional<std::size_t> appended_at;
        std::size_t holes_appended = 0;  // hole records the first append holds
    };
    // `rot_possible` false: no rot hit the log, so a corrupt record inside
    // it (a salvage) is a failure.
    Recovery crash(std::string_view log, std::uint64_t broker_seed, std::uint64_t salvage_incarnation,
                   const std::set<std::string>& damaged_topics, bool synced_messages_checked, bool rot_possible);
    // Run the core's check_invariants() after every `every`-th call (1: after
    // each, the default; 0: only when check_invariants() below is called).
    void set_invariants_every(std::uint32_t every) { invariants_every_ = every; }
    void check_invariants() const { broker_->check_invariants(); }

    void connect(ConnId conn);
    // The bytes of `line` were written to conn's input stream (after every
    // line added before). The strings it views must outlive its delivery.
    void add_line(ConnId conn, const LineIntent& line);
    // The next bytes of conn's input stream reach the broker.
    void receive(ConnId conn, std::string_view bytes);
    void written(ConnId conn, std::size_t bytes);
    void disconnect(ConnId conn);

    const Broker& broker() const { return *broker_; }
    const Model& model() const { return model_; }
    // Bytes added with add_line and not yet received, for `conn`.
    std::size_t unread_input(ConnId conn) const;
    std::uint64_t calls() const { return calls_; }

private:
    struct InputStream {
        std::deque<LineIntent> lines;
        std::size_t front_received = 0;  // bytes of lines.front() already received
        std::size_t unread = 0;
    };

    void settle();
    void resolve_one();
    void check_storage();
    void check_write(const storage::StorageWrite& got, const ExpectedWrite& expected);
    // For the model's resumes: the next subscriber the broker picked.
    ConnId next_choice(const PendingOne& pending);
    void check_transmit(Transmit& transmit);
    void check_connection(ConnId conn);
    [[noreturn]] void fail(const std::string& what) const;

    std::unique_ptr<Broker> broker_;
    Model model_;
    std::unordered_map<ConnId, InputStream> inputs_;
    TransmitHandler on_transmit_;
    CloseHandler on_close_;
    StorageHandler on_storage_;
    storage::StorageWrite write_;
    std::vector<ConnId> one_choices_;  // the broker's picks during the current call
    std::size_t choices_used_ = 0;
    std::vector<Close> closes_;  // drained this call
    Transmit transmit_;          // poll_transmit's, reused: its vectors circulate through the handler
    std::vector<Expected> scratch_expected_;
    std::uint32_t invariants_every_ = 1;
    std::uint64_t calls_ = 0;
};

}  // namespace memq::sim
