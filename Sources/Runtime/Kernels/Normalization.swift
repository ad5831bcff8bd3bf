#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// BatchNormalization in inference mode (float32): per channel,
/// `y = (x − mean) / √(var + ε) · scale + B`, computed as `y = x·a + b`.
///
/// Training mode (`training_mode = 1`, or the running-statistics outputs) is an error.
struct BatchNormalization: Kernel {
  let epsilon: Float

  init(_ builder: KernelBuilder) throws {
    epsilon = try builder.float("epsilon", default: 1e-5)
    builder.ignore("momentum")  // only updates running statistics in training
    if try builder.int("training_mode", default: 0) != 0 {
      throw builder.unsupported("training_mode", 1)
    }
    if try builder.int("spatial", default: 1) != 1 {  // opsets before 9
      throw builder.unsupported("spatial", 0)
    }
    if let isTest = try builder.optionalInt("is_test"), isTest == 0 {  // opsets before 7
      throw builder.unsupported("is_test", 0)
    }
    builder.ignore("consumed_inputs")  // opset 1 bookkeeping
    if (1..<builder.outputCount).contains(where: builder.hasOutput) {
      throw builder.error("training outputs (running mean and variance) are not supported")
    }
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0, .float)
    guard x.rank >= 2 else {
      throw context.error("input must have a batch and a channel axis; got \(describe(shape: x.shape))")
    }
    let channels = x.shape[1]
    var parameters: [[Float]] = []
    for i in 1...4 {
      let p = try context.input(i, .float)
      guard p.shape == [channels] else {
        throw context.error("input \(i) has shape \(describe(shape: p.shape)); expected [\(channels)]")
      }
      parameters.append(p.scalars(as: Float.self))
    }
    let (scale, bias, mean, variance) = (parameters[0], parameters[1], parameters[2], parameters[3])
    var a = [Float](repeating: 0, count: channels)
    var b = a
    for c in 0..<channels {
      a[c] = scale[c] / (variance[c] + epsilon).squareRoot()
      b[c] = bias[c] - mean[c] * a[c]
    }
    let inner = ShapeArithmetic.product(x.shape[2...])
    var y = NDArray(uninitialized: .float, shape: x.shape)
    x.withUnsafeBufferPointer(of: Float.self) { xp in
      y.withUnsafeMutableBufferPointer(of: Float.self) { yp in
        let (xs, ys) = (xp.baseAddress!, yp.baseAddress!)
        let planes = x.shape[0] * channels
        Parallel.forEach(count: planes, threads: context.threadCount, grain: max(1, 32768 / max(inner, 1))) { r in
          for plane in r {
            let (s, t) = (a[plane % channels], b[plane % channels])
            let (xi, yi) = (xs + plane * inner, ys + plane * inner)
            for i in 0..<inner { yi[i] = xi[i] * s + t }
          }
        }
      }
    }
    return [y]
  }
}

/// LRN (float32), across channels: `y = x / (bias + alpha/size · Σ x²)^beta`, the sum over channels
/// `c − ⌊(size−1)/2⌋ … c + ⌈(size−1)/2⌉` clipped to the input.
struct LRN: Kernel {
  let size: Int
  let alpha: Float, beta: Float, bias: Float

  init(_ builder: KernelBuilder) throws {
    size = try builder.int("size")
    guard size >= 1 else { throw builder.attributeError("size", "must be positive, got \(size)") }
    alpha = try builder.float("alpha", default: 1e-4)
    beta = try builder.float("beta", default: 0.75)
    bias = try builder.float("bias", default: 1)
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0, .float)
    guard x.rank >= 2 else {
      throw context.error("input must have a batch and a channel axis; got \(describe(shape: x.shape))")
    }
    let (batch, channels) = (x.shape[0], x.shape[1])
    let inner = ShapeArithmetic.product(x.shape[2...])
    let (before, after) = ((size - 1) / 2, size / 2)
    let scale = alpha / Float(size)
    let (bias, beta) = (self.bias, self.beta)
    var y = NDArray(uninitialized: .float, shape: x.shape)
    x.withUnsafeBufferPointer(of: Float.self) { xp in
      y.withUnsafeMutableBufferPointer(of: Float.self) { yp in
        let (xs, ys) = (xp.baseAddress!, yp.baseAddress!)
        // Per image: squares, then a running window sum over channels, one plane at a time.
        Parallel.forEach(count: batch, threads: context.threadCount) { images in
          let squares = UnsafeMutablePointer<Float>.allocate(capacity: max(channels * inner, 1))
          let window = UnsafeMutablePointer<Float>.allocate(capacity: max(inner, 1))
          defer {
            squares.deallocate()
            window.deallocate()
          }
          for n in images {
            let image = xs + n * channels * inner
            let out = ys + n * channels * inner
            for i in 0..<(channels * inner) { squares[i] = image[i] * image[i] }
            window.update(repeating: 0, count: inner)
            for c in 0..<min(after, channels) {
              let s = squares + c * inner
              for i in 0..<inner { window[i] += s[i] }
            }
            for c in 0..<channels {
              if c + after < channels {
                let s = squares + (c + after) * inner
                for i in 0..<inner { window[i] += s[i] }
              }
              if c - before - 1 >= 0 {
                let s = squares + (c - before - 1) * inner
                for i in 0..<inner { window[i] -= s[i] }
              }
              let (xi, yi) = (image + c * inner, out + c * inner)
              for i in 0..<inner { yi[i] = xi[i] / powf(bias + scale * max(window[i], 0), beta) }
            }
          }
        }
      }
    }
    return [y]
  }
}
