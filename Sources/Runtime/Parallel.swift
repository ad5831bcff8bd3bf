import Dispatch

/// Splits loops over threads. Work is cut into contiguous chunks, never per element.
enum Parallel {
  /// Calls `body` on disjoint chunks covering `0..<count`, on up to `threads` threads, each chunk
  /// at least `grain` long. With one thread (or little work) it is a plain call.
  static func forEach(count: Int, threads: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    let chunks = min(threads, max(1, count / max(grain, 1)))
    if chunks <= 1 {
      body(0..<count)
      return
    }
    withoutActuallyEscaping(body) { body in
      let box = UncheckedBox(body)
      DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
        let start = count * chunk / chunks
        let end = count * (chunk + 1) / chunks
        box.value(start..<end)
      }
    }
  }
}

/// Lets a closure that only touches disjoint memory cross into `concurrentPerform`.
private struct UncheckedBox<T>: @unchecked Sendable {
  let value: T
  init(_ value: T) { self.value = value }
}
