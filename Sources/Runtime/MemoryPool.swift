#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Recycles the memory of freed arrays and scratch buffers.
///
/// A session allocates the same activation sizes on every run, and a fresh large allocation costs
/// a page fault per page touched (as much as the arithmetic of a cheap operator). Freed blocks of
/// at least `minimumBytes` are kept by size, up to `limit` bytes in all, and handed out again.
public enum RuntimeMemory {
  /// The most bytes kept for reuse (process-wide); 0 disables reuse.
  public static var cacheLimit: Int {
    get { pool.withLock { pool.limit } }
    set { pool.withLock { pool.limit = max(0, newValue) } }
  }

  /// Bytes currently kept for reuse.
  public static var cachedBytes: Int { pool.withLock { pool.cached } }

  /// Frees every kept block.
  public static func releaseCachedMemory() {
    let blocks = pool.withLock { pool.drain() }
    for block in blocks { block.deallocate() }
  }

  static let pool = Pool()

  static let minimumBytes = 16 << 10
  static let alignment = 64

  /// Memory for `bytes` bytes, 64-byte aligned; give it back with `deallocate(_:bytes:)`.
  static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
    let size = roundedSize(bytes)
    if size >= minimumBytes, let block = pool.withLock({ pool.take(size) }) { return block }
    return UnsafeMutableRawPointer.allocate(byteCount: size, alignment: alignment)
  }

  static func deallocate(_ block: UnsafeMutableRawPointer, bytes: Int) {
    let size = roundedSize(bytes)
    if size >= minimumBytes, pool.withLock({ pool.keep(block, size) }) { return }
    block.deallocate()
  }

  /// Sizes are rounded up to whole pages (small ones to 64 bytes), so that blocks match across runs.
  private static func roundedSize(_ bytes: Int) -> Int {
    let b = max(bytes, 1)
    return b >= minimumBytes ? (b + 4095) & ~4095 : (b + 63) & ~63
  }

  final class Pool: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    var limit = 512 << 20
    private(set) var cached = 0
    private var blocks: [Int: [UnsafeMutableRawPointer]] = [:]

    init() {
      mutex = .allocate(capacity: 1)
      pthread_mutex_init(mutex, nil)
    }

    func withLock<R>(_ body: () -> R) -> R {
      pthread_mutex_lock(mutex)
      defer { pthread_mutex_unlock(mutex) }
      return body()
    }

    func take(_ size: Int) -> UnsafeMutableRawPointer? {
      guard let block = blocks[size]?.popLast() else { return nil }
      cached -= size
      return block
    }

    func keep(_ block: UnsafeMutableRawPointer, _ size: Int) -> Bool {
      guard cached + size <= limit else { return false }
      blocks[size, default: []].append(block)
      cached += size
      return true
    }

    func drain() -> [UnsafeMutableRawPointer] {
      let all = blocks.values.flatMap { $0 }
      blocks = [:]
      cached = 0
      return all
    }
  }
}

/// Temporary memory for `count` elements of `T` (uninitialized), for the duration of `body`.
func withScratch<T, R>(_ count: Int, of type: T.Type, _ body: (UnsafeMutablePointer<T>) throws -> R) rethrows -> R {
  let bytes = max(count, 1) * MemoryLayout<T>.stride
  let block = RuntimeMemory.allocate(bytes)
  defer { RuntimeMemory.deallocate(block, bytes: bytes) }
  return try body(block.bindMemory(to: T.self, capacity: max(count, 1)))
}
