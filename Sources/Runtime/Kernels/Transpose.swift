/// Transpose (any element type): output axis i is input axis `perm[i]`; the default perm reverses
/// the axes. A perm that only moves extent-1 axes is a view; otherwise `StridedCopy` runs, copying
/// whole rows when the last axis stays last and tile by tile (a blocked 2-D transpose per
/// position of the other axes) when it moves.
struct Transpose: Kernel {
  let perm: [Int]?

  init(_ builder: KernelBuilder) throws { perm = try builder.optionalInts("perm") }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    let p = perm ?? Array((0..<x.rank).reversed())
    guard p.count == x.rank, Set(p).count == p.count, p.allSatisfy({ $0 >= 0 && $0 < x.rank }) else {
      throw context.label.attributeError("perm", "\(p) is not a permutation of the \(x.rank) axes of the input")
    }
    return [DataMovement.permute(x, p, threads: context.threadCount)]
  }
}

/// DepthToSpace (any element type): `[N, C, H, W]` → `[N, C/b², H·b, W·b]`, the depth read as
/// `[b, b, C/b²]` (mode DCR, the default) or `[C/b², b, b]` (CRD, opset 11).
struct DepthToSpace: Kernel {
  let blockSize: Int
  let columnRowDepth: Bool

  init(_ builder: KernelBuilder) throws {
    blockSize = try builder.int("blocksize")
    guard blockSize > 0 else { throw builder.attributeError("blocksize", "must be positive; got \(blockSize)") }
    let mode = try builder.string("mode", default: "DCR")
    guard mode == "DCR" || mode == "CRD" else { throw builder.unsupported("mode", "'\(mode)'") }
    columnRowDepth = mode == "CRD"
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    let b = blockSize
    guard x.rank == 4, x.shape[1] % (b * b) == 0 else {
      throw context.error(
        "input must be 4-D with channels divisible by blocksize² = \(b * b); got \(describe(shape: x.shape))")
    }
    let (n, c, h, w) = (x.shape[0], x.shape[1] / (b * b), x.shape[2], x.shape[3])
    let view = columnRowDepth ? x.reshaped([n, c, b, b, h, w]) : x.reshaped([n, b, b, c, h, w])
    let perm = columnRowDepth ? [0, 1, 4, 2, 5, 3] : [0, 3, 4, 1, 5, 2]
    return [DataMovement.permute(view, perm, threads: context.threadCount).reshaped([n, c, h * b, w * b])]
  }
}

/// SpaceToDepth (any element type): `[N, C, H, W]` → `[N, C·b², H/b, W/b]`, each b×b block
/// becoming depth `[b, b, C]`.
struct SpaceToDepth: Kernel {
  let blockSize: Int

  init(_ builder: KernelBuilder) throws {
    blockSize = try builder.int("blocksize")
    guard blockSize > 0 else { throw builder.attributeError("blocksize", "must be positive; got \(blockSize)") }
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let x = try context.input(0)
    let b = blockSize
    guard x.rank == 4, x.shape[2] % b == 0, x.shape[3] % b == 0 else {
      throw context.error("input must be 4-D with H and W divisible by blocksize \(b); got \(describe(shape: x.shape))")
    }
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2] / b, x.shape[3] / b)
    let view = x.reshaped([n, c, h, b, w, b])
    return [
      DataMovement.permute(view, [0, 3, 5, 1, 2, 4], threads: context.threadCount).reshaped([n, c * b * b, h, w])
    ]
  }
}
