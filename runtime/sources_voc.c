/* sources_voc.c - the `voc` source: a PASCAL VOC devkit folder (Everingham et
 * al., IJCV 2010) read through an image list (runtime/voc.h: libexpat for the
 * annotations).
 *
 *   source.path   the devkit folder (JPEGImages/, Annotations/, ...)
 *   source.list   an ImageSets list inside it, one image id per line
 *   dist.N        objects:xml: the image's class presence from its XML
 *                 annotation, 20 values in VOC order: 1 some object of the
 *                 class, 0 only 'difficult' ones, -1 none (the devkit's
 *                 convention), as floats
 *   dist.N        mask:png: the image's SegmentationClass label map (palette
 *                 indices: 0 background, 1..20, 255 void), which must have the
 *                 image's size, resized to the input's H x W by nearest
 *                 neighbour (pixel centres, as the image's resize maps them):
 *                 H*W class indices as floats
 *
 * A sample is the image JPEGImages/ID.jpg, named "DEVKIT/JPEGImages/ID.jpg"
 * in messages.  An annotation that cannot be read, or lists no object,
 * makes its sample bad; a missing list fails the load.  Splits: kfold (the
 * list's order) or a split file joined by the image's file name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "data_impl.h"
#include "voc.h"

/* The objects:xml field of image id: 20 floats.  NULL, or why the sample is bad. */
static char *read_objects(const DataSpec *spec, const char *id, float *row)
{
    char *xml = dl_xasprintf("%s/Annotations/%s.xml", spec->path, id);
    char *rel = dl_xasprintf("%s/Annotations/%s.xml", spec->rel_path, id);
    DlVocAnnotation a;
    char *why = NULL;
    if (dl_voc_read_annotation(xml, rel, &a, &why) == 0) {
        if (a.nobjects == 0) why = dl_xasprintf("%s: no object in the annotation", rel);
        for (int c = 0; c < DL_VOC_NCLASSES; c++) row[c] = (float)a.presence[c];
    }
    free(xml), free(rel);
    return why;
}

/* The mask:png field of image id: its label map, checked against the JPEG's
 * size, nearest-resized to H x W floats.  NULL, or why the sample is bad. */
static char *read_mask(const DataSpec *spec, const char *id, float *out)
{
    char *png = dl_xasprintf("%s/SegmentationClass/%s.png", spec->path, id);
    char *rel = dl_xasprintf("%s/SegmentationClass/%s.png", spec->rel_path, id);
    char *jpg = dl_xasprintf("%s/JPEGImages/%s.jpg", spec->path, id);
    char *jrel = dl_xasprintf("%s/JPEGImages/%s.jpg", spec->rel_path, id);
    DlVocMask m;
    char *why = NULL;
    int w, h;
    if (dl_voc_read_mask(png, rel, &m, &why) == 0) {
        if (dl_voc_jpeg_size(jpg, jrel, &w, &h, &why) == 0 && dl_voc_check_mask_size(rel, &m, jrel, w, h, &why) == 0) {
            size_t hw = (size_t)spec->H * spec->W;
            uint8_t *small = dl_xmalloc(hw);
            dl_voc_resize_map(m.data, m.width, m.height, small, spec->W, spec->H);
            for (size_t p = 0; p < hw; p++) out[p] = (float)small[p];
            free(small);
        }
        dl_voc_mask_free(&m);
    }
    free(png), free(rel), free(jpg), free(jrel);
    return why;
}

int scan_voc(const DataSpec *spec, SampleList *out, char **err)
{
    if (spec->features) {
        *err = dl_xasprintf("%s: a voc source gives images: declare input = image(...)", spec->rel_path);
        return -1;
    }
    if (spec->nlabels > 0) {
        *err = dl_xasprintf("%s: a voc source has no label columns; its objects are a field (NAME = objects())",
                            spec->rel_path);
        return -1;
    }
    DlVocList list;
    if (dl_voc_read_list(spec->list, spec->rel_list, &list, err)) return -1;
    int width = 0;
    for (int f = 0; f < spec->ndist; f++) {
        out->dist_width[f] = spec->dist_from[f] == LBL_MASK ? spec->H * spec->W : DL_VOC_NCLASSES;
        width += out->dist_width[f];
    }
    for (int i = 0; i < list.n; i++) {
        const char *id = list.ids[i];
        Sample *s = sample_push(out);
        s->path = dl_xasprintf("%s/JPEGImages/%s.jpg", spec->path, id);
        s->rel = dl_xasprintf("%s/JPEGImages/%s.jpg", spec->rel_path, id);
        s->key_dir = dl_xasprintf("%s.jpg", id);
        s->key_parent = dl_xasprintf("JPEGImages/%s.jpg", id);
        if (spec->ndist == 0) continue;
        s->dist = dl_xmalloc((size_t)width * sizeof *s->dist);
        for (int f = 0, off = 0; f < spec->ndist && !s->bad; off += out->dist_width[f], f++)
            s->bad = spec->dist_from[f] == LBL_MASK ? read_mask(spec, id, s->dist + off) : read_objects(spec, id, s->dist + off);
    }
    dl_voc_list_free(&list);
    return 0;
}
