import Graph

/// MaxPool (float32) over one to three spatial axes: pads, strides, dilations, auto_pad,
/// ceil_mode, and the optional Indices output (flat indices into the input; storage_order 1, column
/// major within each image, for two spatial axes).
struct MaxPool: Kernel {
  let window: WindowAttributes
  let columnMajorIndices: Bool
  let computesIndices: Bool

  init(_ builder: KernelBuilder) throws {
    window = try WindowAttributes(builder, hasDilations: true, hasCeilMode: true, pooling: true)
    guard window.kernelShape != nil else { throw builder.attributeError("kernel_shape", "is required") }
    let order = try builder.int("storage_order", default: 0)
    guard order == 0 || order == 1 else { throw builder.unsupported("storage_order", order) }
    columnMajorIndices = order == 1
    computesIndices = builder.hasOutput(1)
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let input = try context.input(0, .float, .int8, .uint8)
    // int8 and uint8 (opset 12) pool exactly in float32: every value is exact and max only picks.
    let x = input.dtype == .float ? input : Self.converted(input, to: .float)
    let (pool, outShape) = try poolingWindow(x, window, context)
    if input.dtype != .float {
      var outputs = try pooled(x, pool, outShape, context)
      outputs[0] = Self.converted(outputs[0], to: input.dtype)
      return outputs
    }
    return try pooled(x, pool, outShape, context)
  }

  /// int8/uint8 to float32 and back (the values are integers within range both ways).
  private static func converted(_ x: NDArray, to dtype: DType) -> NDArray {
    var y = NDArray(uninitialized: dtype, shape: x.shape)
    func copy<S: TensorElement, D: TensorElement>(_ s: S.Type, _ d: D.Type, _ f: (S) -> D) {
      x.withUnsafeBufferPointer(of: S.self) { xp in
        y.withUnsafeMutableBufferPointer(of: D.self) { yp in
          for i in 0..<xp.count { yp[i] = f(xp[i]) }
        }
      }
    }
    switch (x.dtype, dtype) {
    case (.int8, _): copy(Int8.self, Float.self) { Float($0) }
    case (.uint8, _): copy(UInt8.self, Float.self) { Float($0) }
    case (_, .int8): copy(Float.self, Int8.self) { Int8(exactly: $0) ?? 0 }
    default: copy(Float.self, UInt8.self) { UInt8(exactly: $0) ?? 0 }
    }
    return y
  }

  private func pooled(_ x: NDArray, _ pool: PoolingWindow, _ outShape: [Int], _ context: KernelContext) throws
    -> [NDArray]
  {
    if columnMajorIndices && computesIndices && pool.geometry.rank != 2 {
      throw context.label.attributeError("storage_order", "1 is supported for two spatial axes only")
    }
    var y = NDArray(uninitialized: .float, shape: outShape)
    if y.count == 0 {
      return computesIndices ? [y, NDArray(uninitialized: .int64, shape: outShape)] : [y]
    }
    guard computesIndices else {
      SeparablePooling<MaxCombine>.run(pool, x, &y, divisors: nil, threads: context.threadCount)
      return [y]
    }
    var indices = NDArray(uninitialized: .int64, shape: outShape)
    x.withUnsafeBufferPointer(of: Float.self) { xp in
      y.withUnsafeMutableBufferPointer(of: Float.self) { yp in
        indices.withUnsafeMutableBufferPointer(of: Int64.self) { ip in
          let (xs, ys, idx) = (xp.baseAddress!, yp.baseAddress!, ip.baseAddress!)
          Parallel.forEach(count: pool.planes, threads: context.threadCount, grain: 4) { planes in
            for plane in planes { maxPlane(pool, plane, xs, ys, idx) }
          }
        }
      }
    }
    return [y, indices]
  }

  /// Max and its index by direct window scans (only when the Indices output is wanted).
  private func maxPlane(
    _ p: PoolingWindow, _ plane: Int, _ xs: UnsafePointer<Float>, _ ys: UnsafeMutablePointer<Float>,
    _ indices: UnsafeMutablePointer<Int64>
  ) {
    let x = xs + plane * p.inputPlane
    var y = ys + plane * p.outputPlane
    var out = indices + plane * p.outputPlane
    for od in 0..<p.output.d {
      let startD = od * p.strides.d - p.pads.d
      let (d0, d1) = p.taps.d[od]
      for oh in 0..<p.output.h {
        let startH = oh * p.strides.h - p.pads.h
        let (h0, h1) = p.taps.h[oh]
        for ow in 0..<p.output.w {
          let startW = ow * p.strides.w - p.pads.w
          let (w0, w1) = p.taps.w[ow]
          var best = -Float.infinity
          var at = -1
          for td in d0..<d1 {
            let id = startD + td * p.dilations.d
            for th in h0..<h1 {
              let ih = startH + th * p.dilations.h
              let rowStart = (id * p.input.h + ih) * p.input.w
              let row = x + rowStart
              for tw in w0..<w1 {
                let iw = startW + tw * p.dilations.w
                let v = row[iw]
                if v > best || at < 0 {
                  best = v
                  at = rowStart + iw
                }
              }
            }
          }
          y.pointee = best
          y += 1
          out.pointee = Int64(index(at, plane, p))
          out += 1
        }
      }
    }
  }

  /// The flat input index ONNX reports for in-plane offset `at` of `plane`.
  private func index(_ at: Int, _ plane: Int, _ p: PoolingWindow) -> Int {
    let base = plane * p.inputPlane
    guard at >= 0 else { return base }
    guard columnMajorIndices else { return base + at }
    let (h, w) = (at / p.input.w, at % p.input.w)
    return base + w * p.input.h + h
  }
}

/// AveragePool (float32) over one to three spatial axes: pads, strides, dilations (opset 19),
/// auto_pad, ceil_mode, count_include_pad. With count_include_pad the divisor counts the taps
/// inside the padded input (not those past it that ceil_mode adds), as onnxruntime does.
struct AveragePool: Kernel {
  let window: WindowAttributes
  let countIncludePad: Bool

  init(_ builder: KernelBuilder) throws {
    window = try WindowAttributes(builder, hasDilations: true, hasCeilMode: true, pooling: true)
    guard window.kernelShape != nil else { throw builder.attributeError("kernel_shape", "is required") }
    countIncludePad = try builder.int("count_include_pad", default: 0) != 0
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0, .float)
    let (pool, outShape) = try poolingWindow(x, window, context)
    var y = NDArray(uninitialized: .float, shape: outShape)
    if y.count == 0 { return [y] }
    // Divisors per axis: the window's product of them divides each sum.
    let g = pool.geometry
    let perAxis: [[Int]] = (0..<g.rank).map { i in
      countIncludePad ? g.paddedTapCounts(axis: i) : g.validTaps(axis: i).map { $0.end - $0.first }
    }
    SeparablePooling<SumCombine>.run(pool, x, &y, divisors: perAxis, threads: context.threadCount)
    return [y]
  }
}

/// Resolves the window of a pooling node over `x` and the output shape.
private func poolingWindow(
  _ x: NDArray, _ window: WindowAttributes, _ context: KernelContext
) throws(RuntimeError) -> (PoolingWindow, [Int]) {
  guard x.rank >= 3 else {
    throw context.error("input must have a batch, a channel and spatial axes; got \(describe(shape: x.shape))")
  }
  guard x.rank <= 5 else { throw context.error("pooling over more than 3 spatial axes is not supported") }
  let g = try window.resolve(input: Array(x.shape[2...]), kernel: window.kernelShape ?? [], label: context.label)
  return (PoolingWindow(planes: x.shape[0] * x.shape[1], g), Array(x.shape[0..<2]) + g.output)
}

/// How a global pool reduces a plane.
protocol PlaneReduction: Sendable {
  static func reduce(_ x: UnsafePointer<Float>, count: Int) -> Float
}

enum AverageReduction: PlaneReduction {
  static func reduce(_ x: UnsafePointer<Float>, count: Int) -> Float {
    FastMath.sum(x, count: count) / Float(count)
  }
}

enum MaxReduction: PlaneReduction {
  static func reduce(_ x: UnsafePointer<Float>, count: Int) -> Float { FastMath.maximum(x, count: count) }
}

/// GlobalAveragePool, GlobalMaxPool (float32): each channel's spatial extent reduced to one value.
struct GlobalPool<Reduction: PlaneReduction>: Kernel {
  init(_ builder: KernelBuilder) throws {}

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0, .float)
    guard x.rank >= 3 else {
      throw context.error("input must have a batch, a channel and spatial axes; got \(describe(shape: x.shape))")
    }
    let planeSize = ShapeArithmetic.product(x.shape[2...])
    var y = NDArray(uninitialized: .float, shape: Array(x.shape[0..<2]) + Array(repeating: 1, count: x.rank - 2))
    x.withUnsafeBufferPointer(of: Float.self) { xp in
      y.withUnsafeMutableBufferPointer(of: Float.self) { yp in
        let (xs, ys) = (xp.baseAddress!, yp.baseAddress!)
        Parallel.forEach(count: yp.count, threads: context.threadCount, grain: max(1, 32768 / max(planeSize, 1))) { r in
          for plane in r { ys[plane] = Reduction.reduce(xs + plane * planeSize, count: planeSize) }
        }
      }
    }
    return [y]
  }
}
