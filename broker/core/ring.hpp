// ring.hpp — Ring<T>, a FIFO on one growable circular buffer: the broker's work
// lists and each topic's cache.
//
// Rules: push_back / pop_front are O(1) and allocate only when the ring grows
// past its largest size so far (capacity doubles, a power of two, and never
// shrinks), so a queue that cycles at a steady size allocates nothing, unlike
// std::deque, which allocates a block every few pushes. Indexing is from the
// front. The subset of std::deque's interface the broker uses, no more.
#pragma once

#include <cstddef>
#include <iterator>
#include <memory>
#include <utility>

#include "check.hpp"

namespace memq {

template <typename T>
class Ring {
public:
    Ring() = default;
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;
    Ring(Ring&& other) noexcept { swap(other); }
    Ring& operator=(Ring&& other) noexcept {
        Ring(std::move(other)).swap(*this);
        return *this;
    }
    ~Ring() = default;

    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    std::size_t capacity() const { return capacity_; }

    T& operator[](std::size_t i) { return slots_[(head_ + i) & (capacity_ - 1)]; }
    const T& operator[](std::size_t i) const { return slots_[(head_ + i) & (capacity_ - 1)]; }
    T& front() { return (*this)[0]; }
    const T& front() const { return (*this)[0]; }
    T& back() { return (*this)[size_ - 1]; }
    const T& back() const { return (*this)[size_ - 1]; }

    void push_back(T value) {
        if (size_ == capacity_) grow();
        slots_[(head_ + size_) & (capacity_ - 1)] = std::move(value);
        ++size_;
    }

    void pop_front() {
        MEMQ_CHECK(size_ > 0);
        slots_[head_] = T();  // let go of what it holds now, not when overwritten
        head_ = (head_ + 1) & (capacity_ - 1);
        --size_;
    }

    // Keeps the first `count` elements (count <= size()).
    void resize(std::size_t count) {
        MEMQ_CHECK(count <= size_);
        while (size_ > count) {
            back() = T();
            --size_;
        }
    }

    void clear() { resize(0); }

    template <typename Owner, typename Value>
    class Iterator {
    public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = T;
        using difference_type = std::ptrdiff_t;
        using pointer = Value*;
        using reference = Value&;

        Iterator() = default;
        Iterator(Owner* ring, std::size_t i) : ring_(ring), i_(i) {}
        reference operator*() const { return (*ring_)[i_]; }
        pointer operator->() const { return &(*ring_)[i_]; }
        Iterator& operator++() {
            ++i_;
            return *this;
        }
        Iterator operator++(int) {
            Iterator before = *this;
            ++i_;
            return before;
        }
        friend bool operator==(const Iterator& a, const Iterator& b) { return a.i_ == b.i_ && a.ring_ == b.ring_; }

    private:
        Owner* ring_ = nullptr;
        std::size_t i_ = 0;
    };
    using iterator = Iterator<Ring, T>;
    using const_iterator = Iterator<const Ring, const T>;

    iterator begin() { return iterator(this, 0); }
    iterator end() { return iterator(this, size_); }
    const_iterator begin() const { return const_iterator(this, 0); }
    const_iterator end() const { return const_iterator(this, size_); }

    void swap(Ring& other) noexcept {
        std::swap(slots_, other.slots_);
        std::swap(capacity_, other.capacity_);
        std::swap(head_, other.head_);
        std::swap(size_, other.size_);
    }

private:
    static constexpr std::size_t kFirstCapacity = 8;

    void grow() {
        const std::size_t capacity = capacity_ == 0 ? kFirstCapacity : capacity_ * 2;
        auto slots = std::make_unique<T[]>(capacity);
        for (std::size_t i = 0; i < size_; ++i) slots[i] = std::move((*this)[i]);
        slots_ = std::move(slots);
        capacity_ = capacity;
        head_ = 0;
    }

    std::unique_ptr<T[]> slots_;
    std::size_t capacity_ = 0;  // 0 or a power of two
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace memq
