/// LayerNormalization (float32): each row of the input flattened to 2-D at `axis` (default −1) is
/// standardized, `(x − mean) / √(var + ε)`, then scaled and shifted by `Scale` and `B`, which
/// broadcast unidirectionally to the input. Optional outputs: `Mean` and `InvStdDev`, of the
/// input's shape with the normalized axes set to 1.
///
/// The statistics are computed in float32, which is what `stash_type` 1 (the default, and the only
/// value supported) asks for.
struct LayerNormalization: Kernel {
  let axis: Int
  let epsilon: Float

  init(_ builder: KernelBuilder) throws {
    axis = try builder.int("axis", default: -1)
    epsilon = try builder.float("epsilon", default: 1e-5)
    let stash = try builder.int("stash_type", default: 1)
    guard stash == 1 else { throw builder.unsupported("stash_type", stash) }
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0, .float)
    let scale = try context.input(1, .float)
    let shift = try context.optionalInput(2).map { b throws(RuntimeError) in
      guard b.dtype == .float else { throw context.unsupportedType(b.dtype, input: 2) }
      return b
    }
    guard let a = ShapeArithmetic.normalize(axis: axis, rank: x.rank) else {
      throw context.label.attributeError("axis", "\(axis) is out of range for rank \(x.rank)")
    }
    let rows = ShapeArithmetic.product(x.shape[..<a])
    let length = ShapeArithmetic.product(x.shape[a...])
    guard let (scaleValues, scaleStep) = Self.rowParameter(scale, x: x, axis: a) else {
      throw context.error(
        "Scale of shape \(describe(shape: scale.shape)) does not broadcast to \(describe(shape: x.shape))")
    }
    var shiftValues: NDArray? = nil
    var shiftStep = 0
    if let shift {
      guard let (values, step) = Self.rowParameter(shift, x: x, axis: a) else {
        throw context.error(
          "B of shape \(describe(shape: shift.shape)) does not broadcast to \(describe(shape: x.shape))")
      }
      (shiftValues, shiftStep) = (values, step)
    }
    var y = NDArray(uninitialized: .float, shape: x.shape)
    let statisticsShape = Array(x.shape[..<a]) + Array(repeating: 1, count: x.rank - a)
    var mean = NDArray(uninitialized: .float, shape: statisticsShape)
    var inverse = NDArray(uninitialized: .float, shape: statisticsShape)
    let epsilon = self.epsilon
    x.withUnsafeBufferPointer(of: Float.self) { xp in
      scaleValues.withUnsafeBufferPointer(of: Float.self) { sp in
        NDArray.withOptionalPointer(shiftValues, of: Float.self) { bp in
          y.withUnsafeMutableBufferPointer(of: Float.self) { yp in
            mean.withUnsafeMutableBufferPointer(of: Float.self) { mp in
              inverse.withUnsafeMutableBufferPointer(of: Float.self) { ip in
                guard rows > 0 else { return }
                let (xs, ys, ss, ms, iv) = (
                  xp.baseAddress, yp.baseAddress, sp.baseAddress!, mp.baseAddress!, ip.baseAddress!
                )
                Parallel.forEach(count: rows, threads: context.threadCount, grain: max(1, 16384 / max(length, 1))) {
                  r in
                  for row in r {
                    guard let xs, let ys else {
                      (ms[row], iv[row]) = (.nan, .nan)
                      continue
                    }
                    let (xi, yi) = (xs + row * length, ys + row * length)
                    let (m, inv) = NormalizationStatistics.statistics(xi, count: length, epsilon: epsilon)
                    (ms[row], iv[row]) = (m, inv)
                    let s = ss + row * scaleStep
                    if let bp {
                      let b = bp + row * shiftStep
                      for i in 0..<length { yi[i] = (xi[i] - m) * inv * s[i] + b[i] }
                    } else {
                      for i in 0..<length { yi[i] = (xi[i] - m) * inv * s[i] }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    return [y, mean, inverse]
  }

  /// A parameter broadcast unidirectionally to `x`, as the values for each row and the distance
  /// between two rows' values: one row of `length` values shared by all rows (step 0) when the
  /// parameter does not vary along the leading axes, every row's values (step `length`) otherwise.
  static func rowParameter(_ p: NDArray, x: NDArray, axis: Int) -> (NDArray, Int)? {
    let normalized = Array(x.shape[axis...])
    let lead = p.rank - normalized.count
    if lead <= 0 || p.shape[..<lead].allSatisfy({ $0 == 1 }) {
      let trimmed = lead > 0 ? p.reshaped(Array(p.shape[lead...])) : p
      guard let row = trimmed.broadcast(to: normalized) else { return nil }
      return (row, 0)
    }
    guard let full = p.broadcast(to: x.shape) else { return nil }
    return (full, ShapeArithmetic.product(normalized))
  }
}

/// InstanceNormalization (float32): each channel plane of each image (input [N, C, D…]) is
/// standardized, then scaled and shifted by that channel's `scale` and `B` ([C] each).
struct InstanceNormalization: Kernel {
  let epsilon: Float

  init(_ builder: KernelBuilder) throws {
    epsilon = try builder.float("epsilon", default: 1e-5)
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0, .float)
    guard x.rank >= 2 else {
      throw context.error("input must have a batch and a channel axis; got \(describe(shape: x.shape))")
    }
    let channels = x.shape[1]
    var parameters: [[Float]] = []
    for i in 1...2 {
      let p = try context.input(i, .float)
      guard p.shape == [channels] else {
        throw context.error("input \(i) has shape \(describe(shape: p.shape)); expected [\(channels)]")
      }
      parameters.append(p.scalars(as: Float.self))
    }
    let (scale, shift) = (parameters[0], parameters[1])
    let inner = ShapeArithmetic.product(x.shape[2...])
    var y = NDArray(uninitialized: .float, shape: x.shape)
    guard y.count > 0 else { return [y] }
    let epsilon = self.epsilon
    x.withUnsafeBufferPointer(of: Float.self) { xp in
      y.withUnsafeMutableBufferPointer(of: Float.self) { yp in
        let (xs, ys) = (xp.baseAddress!, yp.baseAddress!)
        let planes = x.shape[0] * channels
        Parallel.forEach(count: planes, threads: context.threadCount, grain: max(1, 16384 / max(inner, 1))) { r in
          for plane in r {
            let (xi, yi) = (xs + plane * inner, ys + plane * inner)
            let (m, inv) = NormalizationStatistics.statistics(xi, count: inner, epsilon: epsilon)
            let a = inv * scale[plane % channels]
            let b = shift[plane % channels] - m * a
            for i in 0..<inner { yi[i] = xi[i] * a + b }
          }
        }
      }
    }
    return [y]
  }
}

enum NormalizationStatistics {
  /// The mean of `x[0..<count]` and `1 / √(variance + ε)`, the variance taken around the mean
  /// (two passes, in eight lanes).
  @inline(__always)
  static func statistics(_ x: UnsafePointer<Float>, count: Int, epsilon: Float) -> (mean: Float, inverse: Float) {
    let mean = FastMath.sum(x, count: count) / Float(count)
    var lanes = SIMD8<Float>(repeating: 0)
    let m8 = SIMD8<Float>(repeating: mean)
    var i = 0
    while i + 8 <= count {
      let d = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) - m8
      lanes += d * d
      i += 8
    }
    var squares = lanes.sum()
    while i < count {
      let d = x[i] - mean
      squares += d * d
      i += 1
    }
    let variance = squares / Float(count)
    return (mean, 1 / (variance + epsilon).squareRoot())
  }
}
