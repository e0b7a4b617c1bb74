using PureVlm.Tensors;
using Xunit;

namespace PureVlm.Tests;

public class TensorViewTests
{
    static Tensor Iota(params int[] shape)
    {
        var t = Tensor.Zeros(shape);
        for (int i = 0; i < t.Length; i++) t.Data[i] = i;
        return t;
    }

    [Fact]
    public void Transpose_is_a_view_and_contiguous_copies_in_row_major_order()
    {
        var t = new Tensor([1, 2, 3, 4, 5, 6], [2, 3]);
        var view = t.Transpose(0, 1);
        Assert.Same(t.Data, view.Data);
        Assert.False(view.IsContiguous);
        Assert.Throws<InvalidOperationException>(() => view.Span.ToArray());
        var c = view.Contiguous();
        Assert.Equal(new[] { 3, 2 }, c.Shape);
        Assert.Equal(new float[] { 1, 4, 2, 5, 3, 6 }, c.Span.ToArray());
    }

    [Fact]
    public void Slice_shares_the_buffer_so_writes_show_through()
    {
        var t = Iota(4, 3);
        var rows = t.Slice(0, 1, 2);               // rows 1..2: a contiguous view
        Assert.True(rows.IsContiguous);
        Assert.Equal(new float[] { 3, 4, 5, 6, 7, 8 }, rows.Span.ToArray());
        rows[0, 0] = -1;
        Assert.Equal(-1, t[1, 0]);

        var column = t.Slice(1, 2, 1);             // column 2: strided
        Assert.False(column.IsContiguous);
        Assert.Equal(new float[] { 2, 5, 8, 11 }, column.Contiguous().Span.ToArray());
    }

    [Fact]
    public void Reshape_infers_one_dimension_and_refuses_wrong_sizes_and_strided_views()
    {
        var t = Iota(2, 3, 4);
        var r = t.Reshape(6, -1);
        Assert.Equal(new[] { 6, 4 }, r.Shape);
        Assert.Same(t.Data, r.Data);
        Assert.Throws<ArgumentException>(() => t.Reshape(5, 5));
        Assert.Throws<InvalidOperationException>(() => t.Transpose(0, 2).Reshape(24));
    }

    [Fact]
    public void Out_of_range_slices_and_indices_are_errors()
    {
        var t = Iota(2, 3);
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Slice(1, 2, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Slice(2, 0, 1));
        Assert.Throws<IndexOutOfRangeException>(() => t[2, 0]);
        Assert.Throws<ArgumentException>(() => new Tensor(new float[5], [2, 3]));
    }
}
