"""The label-product registry: every entry names a class map that exists; years pair as stated."""

from __future__ import annotations

from storage_schemas.label_classes import CLASS_MAPS
from storage_schemas.label_products import LABEL_PRODUCTS, product_year


def test_every_product_names_an_existing_class_map_of_its_task():
    assert set(LABEL_PRODUCTS) == {"enmap_corine", "enmap_cdl", "enmap_nlcd", "desis_cdl"}
    for product in LABEL_PRODUCTS.values():
        assert CLASS_MAPS[product.class_map].task == product.task, product.name


def test_years_pair_as_the_paper_selects():
    cdl, nlcd, corine = (LABEL_PRODUCTS[n] for n in ("enmap_cdl", "enmap_nlcd", "enmap_corine"))
    assert product_year(cdl, 2023) == 2023 and product_year(cdl, 2024) is None
    assert product_year(nlcd, 2024) == 2021 and product_year(nlcd, 2020) == 2019
    assert product_year(corine, 2022) == 2022
    assert cdl.months == (6, 7, 8, 9)
