// The operators' backward rules keep no reference to the tensors they return: the engine may hand those to leaves as
// their gradients without copying them.
[assembly: Autograd.RulesKeepNoGradients]
