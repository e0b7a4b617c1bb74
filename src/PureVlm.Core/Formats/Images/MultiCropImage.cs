namespace PureVlm.Formats.Images;

/// <summary>
/// An image cut into crops as a multi-crop processor (Molmo's) gives it to the model: normalised patch vectors, a padding
/// mask per patch, and which image token of the prompt each pooled cell of each crop feeds.
/// </summary>
/// <param name="Images">[crops, patches, patch_size² · 3]: each crop's patches row-major, a patch's pixels in (dy, dx, c) order.</param>
/// <param name="Masks">[crops, patches]: the fraction of each patch that is image (1 image, 0 padding, −1 "partly", as the model was trained).</param>
/// <param name="CellTokens">[crops, cells]: for each pooled cell (row-major), the index among the prompt's image-patch tokens it is added to, or −1 when dropped.</param>
/// <param name="Crops">Number of crops (the global view first, then the tiles row-major).</param>
/// <param name="TileRows">Rows of tiles.</param>
/// <param name="TileCols">Columns of tiles.</param>
/// <param name="TokenGrids">The (rows, columns) of image tokens of each block in the prompt: the global view's, then the tile grid's.</param>
public sealed record MultiCropImage(float[] Images, float[] Masks, int[] CellTokens, int Crops, int TileRows, int TileCols,
    IReadOnlyList<(int Rows, int Cols)> TokenGrids)
{
    /// <summary>Image-patch tokens the prompt holds for this image.</summary>
    public int ImageTokens => TokenGrids.Sum(g => g.Rows * g.Cols);
}
