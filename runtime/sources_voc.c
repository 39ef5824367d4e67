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
    for (int f = 0; f < spec->ndist; f++) out->dist_width[f] = DL_VOC_NCLASSES;
    for (int i = 0; i < list.n; i++) {
        const char *id = list.ids[i];
        Sample *s = sample_push(out);
        s->path = dl_xasprintf("%s/JPEGImages/%s.jpg", spec->path, id);
        s->rel = dl_xasprintf("%s/JPEGImages/%s.jpg", spec->rel_path, id);
        s->key_dir = dl_xasprintf("%s.jpg", id);
        s->key_parent = dl_xasprintf("JPEGImages/%s.jpg", id);
        if (spec->ndist == 0) continue;
        char *xml = dl_xasprintf("%s/Annotations/%s.xml", spec->path, id);
        char *rel = dl_xasprintf("%s/Annotations/%s.xml", spec->rel_path, id);
        DlVocAnnotation a;
        char *why = NULL;
        if (dl_voc_read_annotation(xml, rel, &a, &why) != 0) {
            s->bad = why;
        } else if (a.nobjects == 0) {
            s->bad = dl_xasprintf("%s: no object in the annotation", rel);
        } else {
            s->dist = dl_xmalloc((size_t)spec->ndist * DL_VOC_NCLASSES * sizeof *s->dist);
            for (int f = 0; f < spec->ndist; f++)
                for (int c = 0; c < DL_VOC_NCLASSES; c++) s->dist[f * DL_VOC_NCLASSES + c] = (float)a.presence[c];
        }
        free(xml), free(rel);
    }
    dl_voc_list_free(&list);
    return 0;
}
