using PureVlm.Tensors;
using Xunit;

namespace PureVlm.Tests;

public class TensorViewTests
{
    [Fact]
    public void Transpose_then_contiguous_moves_elements()
    {
        var t = new Tensor([1, 2, 3, 4, 5, 6], [2, 3]);
        var c = t.Transpose(0, 1).Contiguous();
        Assert.Equal(new[] { 3, 2 }, c.Shape);
        Assert.Equal(new float[] { 1, 4, 2, 5, 3, 6 }, c.Span.ToArray());
    }
}
