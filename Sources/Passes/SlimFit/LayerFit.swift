import Graph
import Linalg
import Runtime

/// The closed-form ridge least-squares fit of one conv's weights and bias on calibration
/// activations (METHODS 1.9, 5.3), shared by `stream-slim-fit` and `branch-slim-fit`.
///
/// The conv is a linear map of its input patches: with Φ the im2col matrix of the input x (one row
/// per sample and output position, `C·kh·kw` taps plus a 1 for the bias) and θ the `p × M` matrix
/// of weights and biases, `conv(x) = Φ·θ`. Given targets T (the original subgraph's outputs):
///
///     θ = argmin ‖Φθ − T‖² + λ‖θ − θ₀‖²  =  (ΦᵀΦ + λI)⁻¹ (ΦᵀT + λθ₀)
///
/// θ₀ is the initializer (the exact average-pool merge, or the conv scaled by LRN's small-signal
/// gain): the ridge shrinks toward it rather than toward zero, so where the merged layer can
/// represent the original exactly the fit reproduces it whatever λ is. `G = ΦᵀΦ` and `ΦᵀT` are
/// summed sample by sample in float64 (sgemm per sample); the system is Jacobi-scaled, factored by
/// LAPACK's Cholesky in float32 and polished by a round of float64 iterative refinement; a system
/// float32 cannot factor is factored and solved in float64 (``solveFloat64``). λ is `factor · trace(G)/p`, the factor
/// chosen among ``lambdaFactors`` by the relative error on the held-back samples.
///
/// Through kept activations f (`activation`, a ``MonotoneChain``: Relu, LeakyRelu, Max/Min with a
/// scalar, Clip) the target is post-activation, and the fit is made in pre-activation space: each
/// target y becomes the point of f⁻¹(y) nearest the current prediction (exact where f is
/// invertible, LeakyRelu with α > 0; "beyond the bound" where y is a clamp value). Through a lone
/// Relu this is ReLU-aware fitting (METHODS 1.9): a zero target is replaced by min(prediction, 0).
/// With a clamp in the chain the fit starts from θ₀'s predictions and is repeated ``reluRounds``
/// times; a chain of bijections needs one round.
struct LayerFit: Sendable {
  /// The fitted conv's window (group 1).
  let window: Window2D
  let channels: Int
  let outChannels: Int
  /// The activations kept after the fitted conv.
  let activation: MonotoneChain
  /// θ₀, `p × M` row-major: row `(c·kh + u)·kw + v` holds W₀[·, c, u, v], the last row the bias.
  let prior: [Double]

  init(window: Window2D, channels: Int, outChannels: Int, activation: MonotoneChain, prior: [Double]) {
    self.window = window
    self.channels = channels
    self.outChannels = outChannels
    self.activation = activation
    self.prior = prior
  }

  /// A fit with a kept Relu (`throughRelu`) or none.
  init(window: Window2D, channels: Int, outChannels: Int, throughRelu: Bool, prior: [Double]) {
    self.init(
      window: window, channels: channels, outChannels: outChannels, activation: throughRelu ? .relu : .none,
      prior: prior)
  }

  static let lambdaFactors: [Double] = [1e-7, 1e-5, 1e-3, 1e-1]
  static let reluRounds = 3

  /// Taps plus the bias column.
  var columns: Int { channels * window.kernel[0] * window.kernel[1] + 1 }

  /// θ₀ from a conv weight [M, C, kh, kw] and bias, each weight scaled by `scale`.
  static func prior(weight: Kernel4, bias: [Double]?, scale: Double = 1) -> [Double] {
    let (m, c, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
    let p = c * kh * kw + 1
    var theta = [Double](repeating: 0, count: p * m)
    for o in 0..<m {
      for tap in 0..<(p - 1) { theta[tap * m + o] = weight.values[o * (p - 1) + tap] * scale }
      theta[(p - 1) * m + o] = (bias?[o] ?? 0) * scale
    }
    return theta
  }

  /// The patch matrix of input `x` [N, C, H, W] and the target matrix of `t` [N, M, Ho, Wo].
  func patches(_ x: NDArray, _ t: NDArray) throws(SlimFitError) -> (Matrix, Matrix) {
    guard x.dtype == .float, t.dtype == .float, x.shape.count == 4, t.shape.count == 4, x.shape[1] == channels,
      t.shape[0] == x.shape[0], t.shape[1] == outChannels,
      let out = window.outputSize([x.shape[2], x.shape[3]]), out == [t.shape[2], t.shape[3]]
    else { throw .shapes("input \(x.shape), target \(t.shape)") }
    let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
    let (kh, kw, p, m) = (window.kernel[0], window.kernel[1], columns, outChannels)
    let rows = n * out[0] * out[1]
    let xs = x.scalars(as: Float.self), ts = t.scalars(as: Float.self)
    var phi = [Float](repeating: 0, count: rows * p), target = [Float](repeating: 0, count: rows * m)
    for b in 0..<n {
      for i in 0..<out[0] {
        for j in 0..<out[1] {
          let row = (b * out[0] + i) * out[1] + j
          phi[row * p + p - 1] = 1
          for o in 0..<m { target[row * m + o] = ts[((b * m + o) * out[0] + i) * out[1] + j] }
          for c in 0..<channels {
            for u in 0..<kh {
              let y = i * window.strides[0] + u * window.dilations[0] - window.pads[0]
              guard y >= 0, y < h else { continue }
              let source = ((b * channels + c) * h + y) * w, column = row * p + (c * kh + u) * kw
              for v in 0..<kw {
                let z = j * window.strides[1] + v * window.dilations[1] - window.pads[1]
                if z >= 0 && z < w { phi[column + v] = xs[source + z] }
              }
            }
          }
        }
      }
    }
    return (Matrix(rows: rows, columns: p, elements: phi), Matrix(rows: rows, columns: m, elements: target))
  }

  /// Fits on `fitting` (input, target) pairs, choosing λ on `heldOut`.
  func fit(fitting: [(NDArray, NDArray)], heldOut: [(NDArray, NDArray)]) throws(SlimFitError) -> FitResult {
    let train = try fitting.map { (pair) throws(SlimFitError) in try patches(pair.0, pair.1) }
    let check = try heldOut.map { (pair) throws(SlimFitError) in try patches(pair.0, pair.1) }
    guard !train.isEmpty else { throw .shapes("no fitting samples") }
    let p = columns
    var gram = [Double](repeating: 0, count: p * p)
    for (phi, _) in train { accumulate(&gram, phi.multiplied(by: phi, transposingSelf: true)) }
    let trace = (0..<p).reduce(0.0) { $0 + gram[$1 * p + $1] }
    var best: FitResult?
    for factor in Self.lambdaFactors {
      let lambda = max(factor * trace / Double(p), 1e-12)
      var theta = prior
      do {
        for _ in 0..<(activation.clamps ? Self.reluRounds : 1) {
          theta = try solve(gram: gram, rhs: rightHandSide(train, theta: theta), lambda: lambda)
        }
      } catch {
        if factor == Self.lambdaFactors.last && best == nil { throw error }
        continue
      }
      let error = relativeError(check.isEmpty ? train : check, theta: theta)
      if best == nil || error < best!.heldOutError {
        best = FitResult(theta: theta, lambda: lambda, heldOutError: error, fittingError: relativeError(train, theta: theta))
      }
    }
    guard let best, best.heldOutError.isFinite else { throw .solve("the fit did not produce finite weights") }
    return best
  }

  /// ΦᵀT + (nothing: the prior term is added by `solve`), with pre-activation targets (clamp-aware
  /// from `theta`'s predictions).
  private func rightHandSide(_ sets: [(Matrix, Matrix)], theta: [Double]) -> [Double] {
    let (p, m) = (columns, outChannels)
    var rhs = [Double](repeating: 0, count: p * m)
    let thetaMatrix = Matrix(rows: p, columns: m, elements: theta.map { Float($0) })
    for (phi, target) in sets {
      var t = target
      if activation == .relu {
        // ReLU-aware rounds, kept in their original form.
        let prediction = phi.multiplied(by: thetaMatrix)
        for k in t.elements.indices where t.elements[k] <= 0 { t.elements[k] = min(prediction.elements[k], 0) }
      } else if activation.clamps {
        let prediction = phi.multiplied(by: thetaMatrix)
        for k in t.elements.indices {
          t.elements[k] = activation.target(t.elements[k], prediction: prediction.elements[k])
        }
      } else if !activation.isEmpty {
        // Bijections: the targets' exact preimages (the prediction does not matter).
        for k in t.elements.indices { t.elements[k] = activation.target(t.elements[k], prediction: 0) }
      }
      accumulate(&rhs, phi.multiplied(by: t, transposingSelf: true))
    }
    return rhs
  }

  /// Solves (G + λI)·θ = rhs + λθ₀: Jacobi scaling, float32 Cholesky (LAPACK), float64 refinement.
  private func solve(gram: [Double], rhs: [Double], lambda: Double) throws(SlimFitError) -> [Double] {
    let (p, m) = (columns, outChannels)
    var a = gram, b = rhs
    for i in 0..<p { a[i * p + i] += lambda }
    for k in b.indices { b[k] += lambda * prior[k] }
    let d = (0..<p).map { 1 / a[$0 * p + $0].squareRoot() }
    for i in 0..<p {
      for j in 0..<p { a[i * p + j] *= d[i] * d[j] }
      for o in 0..<m { b[i * m + o] *= d[i] }
    }
    let factor: Matrix
    do { factor = try Matrix(rows: p, columns: p, elements: a.map { Float($0) }).choleskyFactor() } catch {
      // Too ill-conditioned for float32 (fewer calibration rows than taps, say): all in float64.
      var y = try Self.solveFloat64(a, b, n: p, r: m)
      for i in 0..<p { for o in 0..<m { y[i * m + o] *= d[i] } }
      return y
    }
    var y = [Double](repeating: 0, count: p * m), residual = b
    for round in 0..<2 {
      if round > 0 { residual = Self.residual(a, y, b, n: p, r: m) }
      let step: Matrix
      do { step = try Matrix.choleskySolve(factor: factor, Matrix(rows: p, columns: m, elements: residual.map { Float($0) })) } catch {
        throw .solve("Cholesky solve failed: \(error)")
      }
      for k in y.indices { y[k] += Double(step.elements[k]) }
    }
    for i in 0..<p { for o in 0..<m { y[i * m + o] *= d[i] } }
    guard y.allSatisfy({ $0.isFinite }) else { throw .solve("the fit is not finite") }
    return y
  }

  /// B − A·Y in float64 (A n×n, Y and B n×r, row-major).
  static func residual(_ a: [Double], _ y: [Double], _ b: [Double], n: Int, r: Int) -> [Double] {
    var result = b
    a.withUnsafeBufferPointer { ap in
      y.withUnsafeBufferPointer { yp in
        result.withUnsafeMutableBufferPointer { rp in
          for i in 0..<n {
            for j in 0..<n {
              let x = ap[i * n + j]
              if x == 0 { continue }
              for o in 0..<r { rp[i * r + o] -= x * yp[j * r + o] }
            }
          }
        }
      }
    }
    return result
  }

  /// Solves A·X = B (A n×n symmetric positive definite, B n×r, row-major) by a float64 Cholesky
  /// factorization, for systems float32 LAPACK cannot factor.
  static func solveFloat64(_ a: [Double], _ b: [Double], n: Int, r: Int) throws(SlimFitError) -> [Double] {
    do { return try Matrix.solvePositiveDefinite(a, b, n: n, r: r) } catch {
      throw .solve("the normal equations are singular (\(error))")
    }
  }

  /// ‖f(Φθ) − T‖ / ‖T‖ over `sets`, f the kept activations.
  private func relativeError(_ sets: [(Matrix, Matrix)], theta: [Double]) -> Double {
    let thetaMatrix = Matrix(rows: columns, columns: outChannels, elements: theta.map { Float($0) })
    var difference = 0.0, norm = 0.0
    for (phi, target) in sets {
      let prediction = phi.multiplied(by: thetaMatrix)
      for k in target.elements.indices {
        let y = activation.isEmpty ? prediction.elements[k] : activation(prediction.elements[k])
        let t = Double(target.elements[k])
        difference += (Double(y) - t) * (Double(y) - t)
        norm += t * t
      }
    }
    return norm > 0 ? (difference / norm).squareRoot() : difference.squareRoot()
  }

  private func accumulate(_ sum: inout [Double], _ part: Matrix) {
    for k in sum.indices { sum[k] += Double(part.elements[k]) }
  }

  /// The fitted weight [M, C, kh, kw] and bias [M] of `result`.
  func tensors(_ result: FitResult) -> (weight: Tensor, bias: Tensor) {
    let (p, m) = (columns, outChannels)
    var weight = [Float](repeating: 0, count: m * (p - 1))
    for o in 0..<m {
      for tap in 0..<(p - 1) { weight[o * (p - 1) + tap] = Float(result.theta[tap * m + o]) }
    }
    let bias = (0..<m).map { Float(result.theta[(p - 1) * m + $0]) }
    return (
      Tensor(floats: weight, shape: [m, channels, window.kernel[0], window.kernel[1]]), Tensor(floats: bias, shape: [m])
    )
  }
}

/// A solved fit.
struct FitResult: Sendable {
  /// `p × M`, as ``LayerFit/prior``.
  let theta: [Double]
  let lambda: Double
  /// Relative L2 error of the fitted layer's output (after the kept Relu) on held-back samples.
  let heldOutError: Double
  let fittingError: Double
}

/// Why a fit could not be made (the change is skipped and reported).
enum SlimFitError: Error, CustomStringConvertible {
  case shapes(String)
  case solve(String)
  case missingValue(String)

  var description: String {
    switch self {
    case .shapes(let s): return "calibration activations do not fit the layer: \(s)"
    case .solve(let s): return s
    case .missingValue(let name): return "value '\(name)' is not in the original model, so there is no target"
    }
  }
}

extension FitResult {
  /// What the report prints for a fitted layer.
  var metrics: [String: Double] {
    ["fit_error": heldOutError, "fit_error_fitting": fittingError, "ridge_lambda": lambda]
  }
}

extension LayerFit {
  /// Fits the layer reading value `input` of the model as rewritten so far to the value `target`
  /// of the original model (passed through `transform`, if given), on `calibration`'s samples
  /// (λ chosen on its held-out ones).
  func fit(
    input: String, target: String, _ rewriter: Rewriter, _ calibration: Calibration,
    transform: ((NDArray) throws -> NDArray)? = nil
  ) throws -> FitResult {
    guard rewriter.original.graph.value(named: target) != nil else { throw SlimFitError.missingValue(target) }
    let threads = rewriter.approximation.threads
    func pairs(_ samples: [[String: NDArray]]) throws -> [(NDArray, NDArray)] {
      let x = try calibration.activations(of: [input], in: rewriter.model, on: samples, threads: threads)
      let t = try calibration.activations(of: [target], in: rewriter.original, on: samples, threads: threads)
      return try zip(x, t).compactMap { a, b in
        guard let x = a.first, let t = b.first else { return nil }
        return (x, try transform?(t) ?? t)
      }
    }
    return try fit(fitting: pairs(calibration.fitting), heldOut: pairs(calibration.heldOut))
  }
}
