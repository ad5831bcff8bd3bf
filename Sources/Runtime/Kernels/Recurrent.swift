import Linalg

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The attributes LSTM, GRU and RNN share: `direction`, `hidden_size`, `layout` (opset 14 on),
/// `clip`, and the activation functions with their `activation_alpha`/`activation_beta`.
struct RecurrentAttributes: Sendable {
  /// Per direction, whether it runs backwards in time: [false], [true] or [false, true].
  let reversed: [Bool]
  let hiddenSize: Int?
  /// 0: X is [seq, batch, input]; 1: X is [batch, seq, input] (and the outputs batch-major too).
  let layout: Int
  /// Bound on the inputs of the activation functions, if any.
  let clip: Float?
  /// `functions` per direction, forward direction first.
  let activations: [RecurrentActivation]

  var directions: Int { reversed.count }

  /// `defaults` are the operator's activation functions for one direction.
  init(_ builder: KernelBuilder, defaults: [String]) throws {
    let direction = try builder.string("direction", default: "forward")
    switch direction {
    case "forward": reversed = [false]
    case "reverse": reversed = [true]
    case "bidirectional": reversed = [false, true]
    default: throw builder.unsupported("direction", "'\(direction)'")
    }
    hiddenSize = try builder.optionalInt("hidden_size")
    if let h = hiddenSize, h <= 0 { throw builder.attributeError("hidden_size", "must be positive, got \(h)") }
    // `layout` exists from opset 14; before, the node carrying it is an error (unread attribute).
    layout = builder.opset >= 14 ? try builder.int("layout", default: 0) : 0
    guard layout == 0 || layout == 1 else { throw builder.unsupported("layout", layout) }
    clip = try builder.optionalFloat("clip")
    if let c = clip, !(c > 0) { throw builder.attributeError("clip", "must be positive, got \(c)") }

    builder.ignore("activations")  // read below: KernelBuilder has no reader for lists of strings
    var names = Array(repeating: defaults, count: reversed.count).flatMap { $0 }
    if let a = builder.node.attribute("activations") {
      guard case .strings(let values) = a.value else {
        throw builder.attributeError("activations", "expected a list of strings")
      }
      names = values.map { String(decoding: $0, as: UTF8.self) }
      guard names.count == defaults.count * reversed.count else {
        throw builder.attributeError(
          "activations", "has \(names.count) functions; expected \(defaults.count) per direction")
      }
    }
    var alphas = (try builder.optionalFloats("activation_alpha") ?? [])[...]
    var betas = (try builder.optionalFloats("activation_beta") ?? [])[...]
    activations = try names.map { name throws(RuntimeError) in
      guard let f = RecurrentActivation(name, alphas: &alphas, betas: &betas) else {
        throw builder.attributeError(
          "activations", "unsupported function '\(name)' (or activation_alpha/activation_beta values missing)")
      }
      return f
    }
  }
}

/// An activation function of the recurrent operators, with its parameters.
enum RecurrentActivation: Sendable, Equatable {
  case sigmoid, tanh, relu, softsign, softplus
  case affine(Float, Float)
  case leakyRelu(Float)
  case thresholdedRelu(Float)
  case scaledTanh(Float, Float)
  case hardSigmoid(Float, Float)
  case elu(Float)

  /// The function named `name` (case-insensitive). Its parameters are taken from the front of
  /// `alphas` and `betas` (which the functions consume in order), or default to the corresponding
  /// ONNX operator's (LeakyRelu 0.01, ThresholdedRelu 1, HardSigmoid 0.2 and 0.5, Elu 1, Affine
  /// 1 and 0). Nil for an unknown name, or for ScaledTanh without its parameters.
  init?(_ name: String, alphas: inout ArraySlice<Float>, betas: inout ArraySlice<Float>) {
    func take(_ values: inout ArraySlice<Float>, _ fallback: Float?) -> Float? {
      values.isEmpty ? fallback : values.removeFirst()
    }
    switch name.lowercased() {
    case "sigmoid": self = .sigmoid
    case "tanh": self = .tanh
    case "relu": self = .relu
    case "softsign": self = .softsign
    case "softplus": self = .softplus
    case "affine":
      guard let a = take(&alphas, 1), let b = take(&betas, 0) else { return nil }
      self = .affine(a, b)
    case "leakyrelu":
      guard let a = take(&alphas, 0.01) else { return nil }
      self = .leakyRelu(a)
    case "thresholdedrelu":
      guard let a = take(&alphas, 1) else { return nil }
      self = .thresholdedRelu(a)
    case "scaledtanh":
      guard let a = take(&alphas, nil), let b = take(&betas, nil) else { return nil }
      self = .scaledTanh(a, b)
    case "hardsigmoid":
      guard let a = take(&alphas, 0.2), let b = take(&betas, 0.5) else { return nil }
      self = .hardSigmoid(a, b)
    case "elu":
      guard let a = take(&alphas, 1) else { return nil }
      self = .elu(a)
    default: return nil
    }
  }

  /// `x[i] = f(min(max(x[i], −clip), clip))` for i in 0..<count (no clipping for a nil clip).
  @inline(__always)
  func apply(_ x: UnsafeMutablePointer<Float>, count: Int, clip: Float?) {
    if let clip {
      for i in 0..<count { x[i] = min(max(x[i], -clip), clip) }
    }
    switch self {
    case .sigmoid: for i in 0..<count { x[i] = FastMath.sigmoid(x[i]) }
    case .tanh: for i in 0..<count { x[i] = FastMath.tanh(x[i]) }
    case .relu: for i in 0..<count { x[i] = max(x[i], 0) }
    case .softsign: for i in 0..<count { x[i] = x[i] / (1 + abs(x[i])) }
    case .softplus:
      for i in 0..<count { x[i] = x[i] > 20 ? x[i] : log1pf(FastMath.exp(x[i])) }
    case .affine(let a, let b): for i in 0..<count { x[i] = a * x[i] + b }
    case .leakyRelu(let a): for i in 0..<count { x[i] = x[i] >= 0 ? x[i] : a * x[i] }
    case .thresholdedRelu(let a): for i in 0..<count { x[i] = x[i] > a ? x[i] : 0 }
    case .scaledTanh(let a, let b): for i in 0..<count { x[i] = a * FastMath.tanh(b * x[i]) }
    case .hardSigmoid(let a, let b): for i in 0..<count { x[i] = min(max(a * x[i] + b, 0), 1) }
    case .elu(let a): for i in 0..<count { x[i] = x[i] >= 0 ? x[i] : a * (FastMath.exp(x[i]) - 1) }
    }
  }
}

/// What a recurrent cell sees at one time step of one direction.
struct RecurrentStep {
  /// The direction (0, or 1 for the backward direction of a bidirectional node).
  let direction: Int
  /// Processing step: the rows still running are those whose length exceeds it.
  let step: Int
  let batch: Int
  let hidden: Int
  /// [batch, gates·hidden]: the input projection plus its bias for the rows still running (zeros
  /// for the other rows).
  let gates: UnsafeMutablePointer<Float>
  /// [batch, hidden] hidden state, updated in place (only rows still running).
  let h: UnsafeMutablePointer<Float>
  /// [batch, hidden] cell state (LSTM), updated in place.
  let c: UnsafeMutablePointer<Float>?
  /// [batch, hidden] of scratch space for the cell.
  let work: UnsafeMutablePointer<Float>
  /// This direction's recurrence weights [gates·hidden, hidden].
  let r: UnsafePointer<Float>
  /// This direction's bias [2·gates·hidden] (W biases then R biases), when the node has one.
  let bias: UnsafePointer<Float>?
  let lengths: UnsafePointer<Int>
  let threads: Int

  @inline(__always)
  func isActive(_ row: Int) -> Bool { lengths[row] > step }

  /// `body` over chunks of rows, on several threads when the step is large enough.
  func forEachRows(_ body: (Range<Int>) -> Void) {
    Parallel.forEach(count: batch, threads: threads, grain: max(1, 16384 / max(8 * hidden, 1)), body)
  }

  /// `gates[:, offset..<offset+n] += a[batch, hidden] · R[rows, :]ᵀ` for R rows `rowOffset..<rowOffset+n`.
  func accumulateRecurrence(
    _ a: UnsafePointer<Float>, rowOffset: Int, count n: Int, into c: UnsafeMutablePointer<Float>, ldc: Int,
    beta: Float = 1
  ) {
    BLAS.sgemm(
      transposeB: true, m: batch, n: n, k: hidden, a: a, lda: max(1, hidden), b: r + rowOffset * hidden,
      ldb: max(1, hidden), beta: beta, c: c, ldc: max(1, ldc))
  }
}

/// The part of LSTM, GRU and RNN that is the same for all three: input checks, the input
/// projection of every time step at once (one sgemm for all directions), the walk over time steps
/// (with per-row `sequence_lens`, each direction starting at its row's own end when reversed), and
/// the Y, Y_h (and Y_c) outputs in either layout. Rows past their length give zeros in Y; a row of
/// length 0 gives zero final states (as onnxruntime does).
///
/// Inputs: X (0), W (1), R (2), B (3), sequence_lens (4), initial_h (5), and initial_c (6) when
/// the cell has a cell state.
enum RecurrentDriver {
  static func run(
    _ context: KernelContext, _ attributes: RecurrentAttributes, gates: Int, cellState: Bool,
    projectionBias: (_ b: [Float]?, _ hidden: Int) -> [Float],
    validate: (_ directions: Int, _ hidden: Int) throws(RuntimeError) -> Void = { _, _ throws(RuntimeError) in },
    step: (RecurrentStep) -> Void
  ) throws(RuntimeError) -> [NDArray] {
    let x = try context.input(0, .float)
    let w = try context.input(1, .float)
    let r = try context.input(2, .float)
    guard x.rank == 3 else { throw context.error("X must have rank 3; got \(describe(shape: x.shape))") }
    let layout = attributes.layout
    let (sequence, batch, inputSize) =
      layout == 0 ? (x.shape[0], x.shape[1], x.shape[2]) : (x.shape[1], x.shape[0], x.shape[2])
    let directions = attributes.directions
    guard r.rank == 3 else { throw context.error("R must have rank 3; got \(describe(shape: r.shape))") }
    let hidden = r.shape[2]
    if let h = attributes.hiddenSize, h != hidden {
      throw context.label.attributeError("hidden_size", "is \(h) but R has shape \(describe(shape: r.shape))")
    }
    let width = gates * hidden
    guard r.shape == [directions, width, hidden] else {
      throw context.error("R has shape \(describe(shape: r.shape)); expected [\(directions), \(width), \(hidden)]")
    }
    guard w.shape == [directions, width, inputSize] else {
      throw context.error("W has shape \(describe(shape: w.shape)); expected [\(directions), \(width), \(inputSize)]")
    }
    var biasRows: [[Float]?] = Array(repeating: nil, count: directions)
    if let b = context.optionalInput(3) {
      guard b.dtype == .float else { throw context.unsupportedType(b.dtype, input: 3) }
      guard b.shape == [directions, 2 * width] else {
        throw context.error("B has shape \(describe(shape: b.shape)); expected [\(directions), \(2 * width)]")
      }
      let values = b.scalars(as: Float.self)
      for d in 0..<directions { biasRows[d] = Array(values[(d * 2 * width)..<((d + 1) * 2 * width)]) }
    }
    var lengths = Array(repeating: sequence, count: batch)
    if let l = context.optionalInput(4) {
      guard l.shape == [batch] else {
        throw context.error("sequence_lens has shape \(describe(shape: l.shape)); expected [\(batch)]")
      }
      switch l.dtype {
      case .int32: lengths = l.scalars(as: Int32.self).map { Int($0) }
      case .int64: lengths = l.scalars(as: Int64.self).map { Int($0) }
      default: throw context.unsupportedType(l.dtype, input: 4)
      }
      if let bad = lengths.first(where: { $0 < 0 || $0 > sequence }) {
        throw context.error("sequence_lens value \(bad) is outside 0…\(sequence)")
      }
    }
    let stateShape = layout == 0 ? [directions, batch, hidden] : [batch, directions, hidden]
    var initial: [NDArray?] = []
    for i in cellState ? [5, 6] : [5] {
      let s = context.optionalInput(i)
      if let s {
        guard s.dtype == .float else { throw context.unsupportedType(s.dtype, input: i) }
        guard s.shape == stateShape else {
          throw context.error(
            "input \(i) has shape \(describe(shape: s.shape)); expected \(describe(shape: stateShape))")
        }
      }
      initial.append(s)
    }
    try validate(directions, hidden)
    let finalLengths = lengths

    let yShape = layout == 0 ? [sequence, directions, batch, hidden] : [batch, sequence, directions, hidden]
    let rows = sequence * batch
    let projectionWidth = directions * width
    guard max(rows, projectionWidth, inputSize, hidden, width) <= BLAS.maxDimension else {
      throw context.error("too large for BLAS")
    }
    var y =
      lengths.allSatisfy({ $0 == sequence })
      ? NDArray(uninitialized: .float, shape: yShape) : NDArray(zeros: .float, shape: yShape)
    var yh = NDArray(zeros: .float, shape: stateShape)
    var yc = NDArray(zeros: .float, shape: stateShape)
    let biases = (0..<directions).map { projectionBias(biasRows[$0], hidden) }
    let stateSize = batch * hidden

    // Offsets, in elements, of row b at time t / of direction d's state of row b.
    func xRow(_ t: Int, _ b: Int) -> Int { layout == 0 ? t * batch + b : b * sequence + t }
    func yOffset(_ t: Int, _ d: Int, _ b: Int) -> Int {
      (layout == 0 ? (t * directions + d) * batch + b : (b * sequence + t) * directions + d) * hidden
    }
    func stateOffset(_ d: Int, _ b: Int) -> Int { (layout == 0 ? d * batch + b : b * directions + d) * hidden }

    x.withUnsafeBufferPointer(of: Float.self) { xp in
      w.withUnsafeBufferPointer(of: Float.self) { wp in
        r.withUnsafeBufferPointer(of: Float.self) { rp in
          withScratch(rows * projectionWidth + 3 * stateSize + batch * width, of: Float.self) { scratch in
            let projection = scratch
            let (h, c) = (scratch + rows * projectionWidth, scratch + rows * projectionWidth + stateSize)
            let work = c + stateSize
            let gateRows = work + stateSize
            gateRows.update(repeating: 0, count: batch * width)
            work.update(repeating: 0, count: stateSize)
            // projection[row, d·width + j] = bias_d[j] + Σ_i X[row, i] · W[d, j, i]
            for row in 0..<rows {
              for d in 0..<directions {
                (projection + row * projectionWidth + d * width).update(from: biases[d], count: width)
              }
            }
            BLAS.sgemm(
              transposeB: true, m: rows, n: projectionWidth, k: inputSize, a: xp.baseAddress!, lda: max(1, inputSize),
              b: wp.baseAddress!, ldb: max(1, inputSize), beta: 1, c: projection, ldc: max(1, projectionWidth))
            y.withUnsafeMutableBufferPointer(of: Float.self) { yp in
              yh.withUnsafeMutableBufferPointer(of: Float.self) { yhp in
                yc.withUnsafeMutableBufferPointer(of: Float.self) { ycp in
                  finalLengths.withUnsafeBufferPointer { lp in
                    NDArray.withOptionalPointer(initial[0], of: Float.self) { h0 in
                      NDArray.withOptionalPointer(initial.count > 1 ? initial[1] : nil, of: Float.self) { c0 in
                        for d in 0..<directions {
                          for b in 0..<batch {
                            let o = stateOffset(d, b)
                            if let h0 {
                              (h + b * hidden).update(from: h0 + o, count: hidden)
                            } else {
                              (h + b * hidden).update(repeating: 0, count: hidden)
                            }
                            if let c0 {
                              (c + b * hidden).update(from: c0 + o, count: hidden)
                            } else {
                              (c + b * hidden).update(repeating: 0, count: hidden)
                            }
                          }
                          biasRows[d].withOptionalBufferPointer { bias in
                            let reversed = attributes.reversed[d]
                            for s in 0..<sequence {
                              for b in 0..<batch {
                                if lp[b] > s {
                                  let t = reversed ? lp[b] - 1 - s : s
                                  (gateRows + b * width).update(
                                    from: projection + xRow(t, b) * projectionWidth + d * width, count: width)
                                } else {
                                  (gateRows + b * width).update(repeating: 0, count: width)
                                }
                              }
                              step(
                                RecurrentStep(
                                  direction: d, step: s, batch: batch, hidden: hidden, gates: gateRows, h: h,
                                  c: cellState ? c : nil, work: work, r: rp.baseAddress! + d * width * hidden,
                                  bias: bias, lengths: lp.baseAddress!, threads: context.threadCount))
                              for b in 0..<batch where lp[b] > s {
                                let t = reversed ? lp[b] - 1 - s : s
                                (yp.baseAddress! + yOffset(t, d, b)).update(from: h + b * hidden, count: hidden)
                              }
                            }
                          }
                          for b in 0..<batch where lp[b] > 0 {
                            let o = stateOffset(d, b)
                            (yhp.baseAddress! + o).update(from: h + b * hidden, count: hidden)
                            (ycp.baseAddress! + o).update(from: c + b * hidden, count: hidden)
                          }
                        }
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    return cellState ? [y, yh, yc] : [y, yh]
  }
}

extension Optional where Wrapped == [Float] {
  /// `body` with a pointer to the elements, or nil.
  fileprivate func withOptionalBufferPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let self else { return body(nil) }
    return self.withUnsafeBufferPointer { body($0.baseAddress!) }
  }
}

/// RNN (float32): `H_t = f(X_t·Wᵀ + H_{t−1}·Rᵀ + Wb + Rb)`, f = Tanh by default.
struct RNN: Kernel {
  let attributes: RecurrentAttributes

  init(_ builder: KernelBuilder) throws {
    attributes = try RecurrentAttributes(builder, defaults: ["Tanh"])
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let attributes = self.attributes
    return try RecurrentDriver.run(
      context, attributes, gates: 1, cellState: false,
      projectionBias: { b, hidden in
        guard let b else { return Array(repeating: 0, count: hidden) }
        return (0..<hidden).map { b[$0] + b[hidden + $0] }
      }
    ) { s in
      let (n, clip) = (s.hidden, attributes.clip)
      let f = attributes.activations[s.direction]
      s.accumulateRecurrence(s.h, rowOffset: 0, count: n, into: s.gates, ldc: n)
      s.forEachRows { rows in
        for b in rows where s.isActive(b) {
          let g = s.gates + b * n
          f.apply(g, count: n, clip: clip)
          (s.h + b * n).update(from: g, count: n)
        }
      }
    }
  }
}
