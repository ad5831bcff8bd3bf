/// Slice (any element type): per axis, elements `start, start + step, …` short of `end`. Starts and
/// ends count from the end when negative and are clamped (to `[0, d]` for positive steps, to
/// `[0, d−1]` and `[−1, d−1]` for negative ones), so INT_MAX/INT_MIN mean "to the end". Inputs
/// `starts`, `ends`, `axes`, `steps` (int32 or int64) from opset 10; attributes `starts`, `ends`,
/// `axes` before. A result that is a contiguous run of the input is a view.
struct SliceKernel: Kernel {
  /// The attributes of opsets before 10: starts, ends, axes.
  let attributes: (starts: [Int], ends: [Int], axes: [Int]?)?

  init(_ builder: KernelBuilder) throws {
    if builder.opset < 10 {
      attributes = (try builder.ints("starts", default: []), try builder.ints("ends", default: []),
        try builder.optionalInts("axes"))
    } else {
      attributes = nil
    }
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    let starts: [Int]
    let ends: [Int]
    var axes: [Int]?
    var steps: [Int]?
    if let attributes {
      (starts, ends, axes) = attributes
    } else {
      starts = try DataMovement.integerInput(context, 1, name: "starts")
      ends = try DataMovement.integerInput(context, 2, name: "ends")
      if context.optionalInput(3) != nil { axes = try DataMovement.integerInput(context, 3, name: "axes") }
      if context.optionalInput(4) != nil { steps = try DataMovement.integerInput(context, 4, name: "steps") }
    }
    let n = starts.count
    guard ends.count == n, axes.map({ $0.count == n }) ?? (n <= x.rank), steps.map({ $0.count == n }) ?? true else {
      throw context.error(
        "starts (\(n)), ends (\(ends.count))\(axes.map { ", axes (\($0.count))" } ?? "")"
          + "\(steps.map { ", steps (\($0.count))" } ?? "") must have one entry per sliced axis (rank \(x.rank))")
    }
    let sliced = try DataMovement.normalize(axes: axes ?? Array(0..<n), rank: x.rank, "axis", context)
    let inStrides = ShapeArithmetic.strides(x.shape)
    var shape = x.shape
    var strides = inStrides
    var offset = 0
    for (k, a) in sliced.enumerated() {
      let d = x.shape[a]
      let step = max(steps?[k] ?? 1, -Int.max)
      guard step != 0 else { throw context.error("steps must not be 0 (axis \(a))") }
      var s = starts[k] < 0 ? starts[k] + d : starts[k]
      var e = ends[k] < 0 ? ends[k] + d : ends[k]
      let count: Int
      if step > 0 {
        s = min(max(s, 0), d)
        e = min(max(e, 0), d)
        count = e > s ? (e - s - 1) / step + 1 : 0
      } else {
        s = min(max(s, 0), d - 1)
        e = min(max(e, -1), d - 1)
        count = s > e ? (s - e - 1) / -step + 1 : 0
      }
      shape[a] = count
      strides[a] = inStrides[a] * step
      if count > 0 { offset += s * inStrides[a] }
    }
    return [DataMovement.gather(x, shape: shape, strides: strides, offset: offset, threads: context.threadCount)]
  }
}

/// Gather (any element type; int32 or int64 indices, negative counting from the end): entries of
/// `axis` picked by the indices, whose shape replaces that axis. One picked slice of a leading
/// axis is a view.
struct Gather: Kernel {
  let axis: Int

  init(_ builder: KernelBuilder) throws { axis = try builder.int("axis", default: 0) }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    let idx = try context.input(1)
    guard let a = ShapeArithmetic.normalize(axis: axis, rank: x.rank) else {
      throw context.label.attributeError("axis", "\(axis) is out of range for rank \(x.rank)")
    }
    guard var indices = DataMovement.integers(idx) else {
      throw context.error("indices must be int32 or int64; got \(idx.dtype)")
    }
    let d = x.shape[a]
    for (k, i) in indices.enumerated() {
      guard i >= -d && i < d else { throw context.error("index \(i) is out of range for axis \(a) of extent \(d)") }
      if i < 0 { indices[k] = i + d }
    }
    let shape = Array(x.shape[..<a]) + idx.shape + Array(x.shape[(a + 1)...])
    let outer = ShapeArithmetic.product(x.shape[..<a])
    let inner = ShapeArithmetic.product(x.shape[(a + 1)...])
    if outer == 1 && indices.count == 1 {
      return [x.slice(elements: (indices[0] * inner)..<((indices[0] + 1) * inner), shape: shape)]
    }
    var y = try DataMovement.allocate(x.dtype, shape, context)
    guard y.count > 0 else { return [y] }
    x.withUnsafeBytes { src in
      y.withUnsafeMutableBytes { dst in
        GatherRows(
          outer: outer, extent: d, inner: inner, indices: indices, source: src.baseAddress!,
          destination: dst.baseAddress!, threads: context.threadCount
        ).run(elementSize: x.elementSize)
      }
    }
    return [y]
  }
}

/// Gather's loop: `out[o, k, :] = x[o, indices[k], :]`.
private struct GatherRows: ElementMove {
  let outer: Int
  let extent: Int
  let inner: Int
  let indices: [Int]
  let source: UnsafeRawPointer
  let destination: UnsafeMutableRawPointer
  let threads: Int

  func run<T: BitwiseCopyable>(as type: T.Type) {
    let src = source.assumingMemoryBound(to: T.self)
    let dst = destination.assumingMemoryBound(to: T.self)
    let (k, n, inner) = (indices.count, extent, inner)
    indices.withUnsafeBufferPointer { idx in
      Parallel.forEach(count: outer * k, threads: threads, grain: max(1, StridedCopy.grain / inner)) { rows in
        var (o, j) = (rows.lowerBound / k, rows.lowerBound % k)
        for row in rows {
          let from = src + (o &* n &+ idx[j]) &* inner
          if inner == 1 { dst[row] = from[0] } else { (dst + row &* inner).update(from: from, count: inner) }
          j += 1
          if j == k { (o, j) = (o + 1, 0) }
        }
      }
    }
  }
}

/// GatherElements (opset 11; any element type; int32 or int64 indices, negative counting from the
/// end): `out[i…] = x[i…]` with the `axis` coordinate replaced by `indices[i…]`. The indices have
/// the input's rank and, off the axis, extents no larger than the input's.
struct GatherElements: Kernel {
  let axis: Int

  init(_ builder: KernelBuilder) throws { axis = try builder.int("axis", default: 0) }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    let idx = try context.input(1)
    guard let a = ShapeArithmetic.normalize(axis: axis, rank: x.rank) else {
      throw context.label.attributeError("axis", "\(axis) is out of range for rank \(x.rank)")
    }
    guard var indices = DataMovement.integers(idx) else {
      throw context.error("indices must be int32 or int64; got \(idx.dtype)")
    }
    guard idx.rank == x.rank, (0..<x.rank).allSatisfy({ $0 == a || idx.shape[$0] <= x.shape[$0] }) else {
      throw context.error(
        "indices of shape \(describe(shape: idx.shape)) do not fit data of shape \(describe(shape: x.shape))"
          + " (axis \(a))")
    }
    let d = x.shape[a]
    for (k, i) in indices.enumerated() {
      guard i >= -d && i < d else { throw context.error("index \(i) is out of range for axis \(a) of extent \(d)") }
      if i < 0 { indices[k] = i + d }
    }
    var y = try DataMovement.allocate(x.dtype, idx.shape, context)
    guard y.count > 0 else { return [y] }
    var strides = ShapeArithmetic.strides(x.shape)
    let axisStride = strides[a]
    strides[a] = 0
    x.withUnsafeBytes { src in
      y.withUnsafeMutableBytes { dst in
        GatherElementsLoop(
          shape: idx.shape, strides: strides, axisStride: axisStride, indices: indices, source: src.baseAddress!,
          destination: dst.baseAddress!, threads: context.threadCount
        ).run(elementSize: x.elementSize)
      }
    }
    return [y]
  }
}

private struct GatherElementsLoop: ElementMove {
  let shape: [Int]
  let strides: [Int]
  let axisStride: Int
  let indices: [Int]
  let source: UnsafeRawPointer
  let destination: UnsafeMutableRawPointer
  let threads: Int

  func run<T: BitwiseCopyable>(as type: T.Type) {
    let src = source.assumingMemoryBound(to: T.self)
    let dst = destination.assumingMemoryBound(to: T.self)
    let step = axisStride
    indices.withUnsafeBufferPointer { idx in
      Parallel.forEach(count: idx.count, threads: threads, grain: StridedCopy.grain) { range in
        var odometer = Odometer(dims: shape, strides: strides, start: range.lowerBound)
        for i in range {
          dst[i] = src[odometer.offset &+ idx[i] &* step]
          odometer.advance()
        }
      }
    }
  }
}

/// Squeeze (any element type, no copy): removes the listed extent-1 axes (attribute `axes` before
/// opset 13, input after), or every extent-1 axis when none are listed (an empty list too, as
/// onnxruntime reads it).
struct Squeeze: Kernel {
  /// The `axes` attribute of opsets before 13.
  let attributeAxes: [Int]?
  let axesFromInput: Bool

  init(_ builder: KernelBuilder) throws {
    axesFromInput = builder.opset >= 13
    attributeAxes = axesFromInput ? nil : try builder.optionalInts("axes")
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    var listed = attributeAxes
    if axesFromInput, context.optionalInput(1) != nil {
      listed = try DataMovement.integerInput(context, 1, name: "axes", int32: false)
    }
    guard let listed, !listed.isEmpty else { return [x.reshaped(x.shape.filter { $0 != 1 })] }
    let axes = try DataMovement.normalize(axes: listed, rank: x.rank, "axis", context)
    for a in axes where x.shape[a] != 1 {
      throw context.error("cannot squeeze axis \(a) of extent \(x.shape[a]) (shape \(describe(shape: x.shape)))")
    }
    return [x.reshaped(x.shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element))]
  }
}

/// Unsqueeze (any element type, no copy): inserts extent-1 axes at the listed positions of the
/// output (attribute `axes` before opset 13, input after; negative counting from the output's end).
struct Unsqueeze: Kernel {
  /// The `axes` attribute of opsets before 13.
  let attributeAxes: [Int]?

  init(_ builder: KernelBuilder) throws {
    attributeAxes = builder.opset >= 13 ? nil : try builder.ints("axes", default: [])
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    // A 0-D axes tensor is taken as one axis, as onnxruntime and the ONNX reference do (ONNX's own
    // expanded AffineGrid function passes one).
    let listed = try attributeAxes ?? DataMovement.integerInput(context, 1, name: "axes", int32: false, scalar: true)
    let rank = x.rank + listed.count
    let axes = Set(try DataMovement.normalize(axes: listed, rank: rank, "axis", context))
    var shape: [Int] = []
    var next = x.shape.makeIterator()
    for a in 0..<rank { shape.append(axes.contains(a) ? 1 : next.next()!) }
    return [x.reshaped(shape)]
  }
}

/// Size: the input's element count as an int64 scalar.
struct Size: Kernel {
  init(_ builder: KernelBuilder) throws {}

  func run(_ context: KernelContext) throws -> [NDArray] { [NDArray(scalar: Int64(try context.input(0).count))] }
}
