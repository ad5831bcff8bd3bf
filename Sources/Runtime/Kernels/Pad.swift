/// Pad (any element type): `pads` lists the begin counts then the end counts of each padded axis
/// (all axes, or those of the `axes` input, opset 18). Negative pads crop first; the remaining
/// extent is then padded by `mode`:
///
///     constant  the constant_value input (opset 11; the `value` attribute before), default 0
///     edge      the edge element repeated
///     reflect   mirrored about the edge elements, periodically for pads beyond the extent
///               (as numpy; onnxruntime rejects those), an extent of 1 repeated
///     wrap      the elements continued periodically (opset 19)
///
/// Before opset 11 `pads` and `value` are attributes.
struct Pad: Kernel {
  enum Mode: String { case constant, reflect, edge, wrap }

  let mode: Mode
  /// The `pads` and `value` attributes of opsets before 11.
  let attributes: (pads: [Int], value: Float)?

  init(_ builder: KernelBuilder) throws {
    let m = try builder.string("mode", default: "constant")
    guard let mode = Mode(rawValue: m) else { throw builder.unsupported("mode", "'\(m)'") }
    self.mode = mode
    if builder.opset < 11 {
      guard let pads = try builder.optionalInts("pads") ?? builder.optionalInts("paddings") else {
        throw builder.attributeError("pads", "is required")
      }
      attributes = (pads, try builder.float("value", default: 0))
    } else {
      attributes = nil
    }
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    let rank = x.rank
    let pads: [Int]
    var axes = Array(0..<rank)
    var fill: NDArray? = nil
    if let attributes {
      pads = attributes.pads
      if mode == .constant {
        guard let v = DataMovement.scalar(Double(attributes.value), x.dtype) else {
          throw context.unsupportedType(x.dtype, input: 0)
        }
        fill = v
      }
    } else {
      pads = try DataMovement.integerInput(context, 1, name: "pads", int32: false)
      if let v = context.optionalInput(2), mode == .constant, v.count > 0 {
        guard v.dtype == x.dtype, v.count == 1 else {
          throw context.error(
            "constant_value must be one \(x.dtype) element; got \(v.dtype) \(describe(shape: v.shape))")
        }
        fill = v
      }
      if context.optionalInput(3) != nil {
        let listed = try DataMovement.integerInput(context, 3, name: "axes")
        axes = try DataMovement.normalize(axes: listed, rank: rank, "axis", context)
      }
    }
    guard pads.count == 2 * axes.count else {
      throw context.error("pads \(pads) must hold 2 × \(axes.count) counts for input \(describe(shape: x.shape))")
    }
    var before = [Int](repeating: 0, count: rank)
    var after = [Int](repeating: 0, count: rank)
    for (k, a) in axes.enumerated() {
      before[a] = pads[k]
      after[a] = pads[k + axes.count]
    }
    if mode == .constant && fill == nil {
      guard let zero = DataMovement.scalar(0, x.dtype) else { throw context.unsupportedType(x.dtype, input: 0) }
      fill = zero
    }
    // Per axis: the kept extent after cropping, and the output extent.
    var shape = x.shape
    var kept = x.shape
    for a in 0..<rank {
      let (b, e) = (before[a], after[a])
      let (total, overflow) = x.shape[a].addingReportingOverflow(b)
      let (out, overflow2) = total.addingReportingOverflow(e)
      kept[a] = x.shape[a] - max(-b, 0) - max(-e, 0)
      guard !overflow, !overflow2, out >= 0, kept[a] >= 0 || out == 0 else {
        throw context.error("pads \(pads) do not fit axis \(a) of extent \(x.shape[a])")
      }
      if mode != .constant && kept[a] <= 0 && out > 0 {
        throw context.error("cannot pad axis \(a) of no elements in \(mode.rawValue) mode")
      }
      shape[a] = out
    }
    let strides = ShapeArithmetic.strides(x.shape)
    if before.allSatisfy({ $0 <= 0 }) && after.allSatisfy({ $0 <= 0 }) {
      let offset = (0..<rank).reduce(0) { $0 + -before[$1] * strides[$1] }
      return [DataMovement.gather(x, shape: shape, strides: strides, offset: offset, threads: context.threadCount)]
    }
    var y = try DataMovement.allocate(x.dtype, shape, context)
    guard y.count > 0 else { return [y] }
    // Per axis: the source element offset of each output index, −1 for the constant.
    let maps = (0..<rank).map { a -> [Int] in
      let n = kept[a]
      let crop = max(-before[a], 0)
      let pad = max(before[a], 0)
      return (0..<shape[a]).map { o -> Int in
        var i = o - pad
        if i < 0 || i >= n {
          switch mode {
          case .constant: return -1
          case .edge: i = min(max(i, 0), n - 1)
          case .wrap: i = ((i % n) + n) % n
          case .reflect:
            if n == 1 {
              i = 0
            } else {
              let period = 2 * (n - 1)
              i = ((i % period) + period) % period
              if i >= n { i = period - i }
            }
          }
        }
        return (crop + i) * strides[a]
      }
    }
    let constant = fill
    x.withUnsafeBytes { src in
      y.withUnsafeMutableBytes { dst in
        let job = { (fillBytes: UnsafeRawPointer?) in
          IndexMapCopy(
            maps: maps, source: src.baseAddress ?? UnsafeRawPointer(dst.baseAddress!), destination: dst.baseAddress!,
            fill: fillBytes, threads: context.threadCount
          ).run(elementSize: x.elementSize)
        }
        if let constant { constant.withUnsafeBytes { job($0.baseAddress) } } else { job(nil) }
      }
    }
    return [y]
  }
}
