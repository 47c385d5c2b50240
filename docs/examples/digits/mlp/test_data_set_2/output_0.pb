
BlogitsJ(‡YEÁTÁƒÆ¨À =EAWXÖÁë›>Hl®Á¿Í£À¶jÁ–ƒ-@