/// If: runs `then_branch` or `else_branch` (subgraphs without inputs, reading values of the
/// enclosing graphs by name) on a bool condition, and returns that branch's outputs.
struct If: Kernel {
  let thenBranch: Subgraph
  let elseBranch: Subgraph

  init(_ builder: KernelBuilder) throws {
    thenBranch = try builder.subgraph("then_branch")
    elseBranch = try builder.subgraph("else_branch")
    guard thenBranch.inputNames.isEmpty, elseBranch.inputNames.isEmpty else {
      throw builder.error("If branches must not have inputs")
    }
    guard thenBranch.outputNames.count == elseBranch.outputNames.count else {
      throw builder.error(
        "the branches have \(thenBranch.outputNames.count) and \(elseBranch.outputNames.count) outputs")
    }
  }

  func run(_ context: KernelContext) throws -> [NDArray] {
    let condition = try context.input(0, .bool)
    guard condition.count == 1 else {
      throw context.error("the condition must hold one value; got shape \(describe(shape: condition.shape))")
    }
    let branch = condition.scalars(as: Bool.self)[0] ? thenBranch : elseBranch
    return try branch.run([], context: context)
  }
}
