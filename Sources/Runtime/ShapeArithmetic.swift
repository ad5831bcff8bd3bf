/// Shape arithmetic shared by kernels.
enum ShapeArithmetic {
  /// The product of `dims` (1 for none); dims come from validated arrays, so it cannot overflow
  /// past their element count.
  static func product<C: Collection<Int>>(_ dims: C) -> Int { dims.reduce(1, *) }

  /// `axis` in `-rank..<rank` as a non-negative axis; nil when out of range.
  static func normalize(axis: Int, rank: Int) -> Int? {
    let a = axis < 0 ? axis + rank : axis
    return a >= 0 && a < rank ? a : nil
  }

  /// Row-major strides of `shape`, in elements.
  static func strides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
      strides[i] = s
      s *= shape[i]
    }
    return strides
  }
}
